// The socket, and the one module that speaks the protocol's transport rules:
// - reconnects with exponential backoff and jitter;
// - rejoins every room with `since` on each (re)connect;
// - keeps every send, edit, delete and reaction (by client_id) until its ack,
//   and resends them after a reconnect, so typing offline loses nothing; one
//   refused for a while (`rate_limited`, `overloaded`) goes again after `retry_after`, one
//   refused for good (say, `forbidden`) is dropped;
// - pings after 25 s of silence, and reconnects if 10 s more pass without a word.

const IDLE_PING_MS = 25000;
// Errors after which a request is worth sending again; any other drops it.
const RETRYABLE = new Set(["rate_limited", "overloaded", "unavailable", "internal_error"]);
const PONG_TIMEOUT_MS = 10000;

export class Connection {
  constructor(url, { onFrame, onStatus }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onStatus = onStatus; // (connected: bool, text)
    this.outbox = new Map(); // client_id -> frame, until its ack
    this.rooms = new Map(); // slug -> () => since
    this.asked = []; // questions asked while not connected, for the next connect
    this.attempt = 0;
    this.heard = Date.now();
    setInterval(() => this.keepalive(), 5000);
    this.open();
  }

  open() {
    this.ws = new WebSocket(this.url);
    this.ws.addEventListener("open", () => {
      this.attempt = 0;
      this.heard = Date.now();
      this.onStatus(true, "");
      for (const [room, since] of this.rooms) this.raw({ type: "join", room, since: since() });
      for (const frame of this.outbox.values()) this.raw(frame);
      for (const frame of this.asked.splice(0)) this.raw(frame);
    });
    this.ws.addEventListener("message", (event) => {
      this.heard = Date.now();
      const frame = JSON.parse(event.data);
      if (frame.type === "ack") this.outbox.delete(frame.client_id);
      if (frame.type === "error" && this.outbox.has(frame.ref)) this.retry(frame);
      this.onFrame(frame);
    });
    this.ws.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4400) {
        this.onStatus(false, "The server refused this connection.");
        return;
      }
      const delay = Math.min(30000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.onStatus(false, `Connection lost. Reconnecting in ${Math.ceil(delay / 1000)} s…`);
      setTimeout(() => this.open(), delay);
    });
  }

  // A request refused: try it again when the server says (rate_limited,
  // unavailable), at the next connect (internal_error), or never.
  retry({ ref, code, retry_after: after }) {
    if (!RETRYABLE.has(code)) this.outbox.delete(ref);
    else if (after) setTimeout(() => this.outbox.has(ref) && this.raw(this.outbox.get(ref)), after * 1000);
  }

  keepalive() {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const idle = Date.now() - this.heard;
    if (idle > IDLE_PING_MS + PONG_TIMEOUT_MS) this.ws.close();
    else if (idle > IDLE_PING_MS) this.raw({ type: "ping" });
  }

  get connected() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  // Send now if connected; frames that matter go through `request` instead.
  raw(frame) {
    if (this.connected) this.ws.send(JSON.stringify(frame));
  }

  // A question (search, mentions): sent now, or at the next connect if the
  // socket is not open yet (a search typed as the page loads), once.
  ask(frame) {
    if (this.connected) this.raw(frame);
    else this.asked.push(frame);
  }

  join(room, since) {
    this.rooms.set(room, since);
    this.raw({ type: "join", room, since: since() });
  }

  // A frame with a fresh client_id, kept and resent until acked: send, edit, delete.
  request(frame) {
    const withId = { ...frame, client_id: crypto.randomUUID() };
    this.outbox.set(withId.client_id, withId);
    this.raw(withId);
    return withId;
  }
}
