// The socket: reconnects with exponential backoff and jitter, rejoins rooms
// with `since`, and resends every unacknowledged message with its client_id.
// It pings after 25 s of silence and reconnects if 10 s more pass without a word.

const IDLE_PING_MS = 25000;
const PONG_TIMEOUT_MS = 10000;

export class Connection {
  constructor(url, { onFrame, onStatus }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.outbox = new Map(); // client_id -> send frame, until its ack
    this.rooms = new Map(); // slug -> () => since
    this.attempt = 0;
    this.ws = null;
    this.heard = Date.now();
    setInterval(() => this.keepalive(), 5000);
    this.open();
  }

  keepalive() {
    const idle = Date.now() - this.heard;
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (idle > IDLE_PING_MS + PONG_TIMEOUT_MS) this.ws.close();
    else if (idle > IDLE_PING_MS) this.raw({ type: "ping" });
  }

  open() {
    this.ws = new WebSocket(this.url);
    this.ws.addEventListener("open", () => {
      this.attempt = 0;
      this.heard = Date.now();
      this.onStatus("");
      for (const [room, since] of this.rooms) this.raw({ type: "join", room, since: since() });
      for (const frame of this.outbox.values()) this.raw(frame);
    });
    this.ws.addEventListener("message", (event) => {
      this.heard = Date.now();
      const frame = JSON.parse(event.data);
      if (frame.type === "ack") this.outbox.delete(frame.client_id);
      this.onFrame(frame);
    });
    this.ws.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4400) {
        this.onStatus("The server refused this connection.");
        return;
      }
      const delay = Math.min(30000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.onStatus(`Reconnecting in ${Math.round(delay / 1000)} s…`);
      setTimeout(() => this.open(), delay);
    });
  }

  raw(frame) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  join(room, since) {
    this.rooms.set(room, since);
    this.raw({ type: "join", room, since: since() });
  }

  // Queue a message until acked; it is sent now if the socket is open, else on reconnect.
  send(room, body) {
    const frame = { type: "send", room, body, client_id: crypto.randomUUID() };
    this.outbox.set(frame.client_id, frame);
    this.raw(frame);
    return frame;
  }
}
