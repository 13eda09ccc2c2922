// The socket, and the one module that speaks the protocol's transport rules:
// - reconnects after 1, 2, 5, then every 10 s (each jittered down by up to
//   half), counting down aloud; at once on "Reconnect now", when the browser
//   comes back online, or when the tab is shown again;
// - rejoins every room with `since` on each (re)connect;
// - keeps every send, edit, delete and reaction (by client_id) until its ack,
//   and resends them after a reconnect, so typing offline loses nothing; one
//   refused for a while (`rate_limited`, `overloaded`) goes again after `retry_after`, one
//   refused for good (say, `forbidden`) is dropped;
// - pings after 25 s of silence, and reconnects if 10 s more pass without a word;
// - stops on a refusal (close 4400 or 4401), saying the server's reason,
//   until `reopen` (a guest who fixed their name).
import { errorText } from "./api.js";

const IDLE_PING_MS = 25000;
// Errors after which a request is worth sending again; any other drops it.
const RETRYABLE = new Set(["rate_limited", "overloaded", "unavailable", "internal_error"]);
const PONG_TIMEOUT_MS = 10000;
const REFUSED = new Set([4400, 4401]);
const BACKOFF_S = [1, 2, 5, 10];

// How long to wait before reconnect attempt `attempt` (0: the first), in ms.
export function backoffDelay(attempt, random = Math.random) {
  return BACKOFF_S[Math.min(attempt, BACKOFF_S.length - 1)] * 1000 * (0.5 + random() / 2);
}

export class Connection {
  // onStatus(connected, text, {retry}): the banner; `retry` offers "Reconnect now".
  // onRefused(error): the server closed with 4400/4401; error is its `error` frame.
  constructor(url, { onFrame, onStatus, onRefused }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.onRefused = onRefused;
    this.outbox = new Map(); // client_id -> frame, until its ack
    this.rooms = new Map(); // slug -> () => since
    this.asked = []; // questions asked while not connected, for the next connect
    this.attempt = 0;
    this.heard = Date.now();
    this.retry = null; // {timer, ticker} while waiting to reconnect
    setInterval(() => this.keepalive(), 5000);
    const soon = () => this.reconnectNow();
    window.addEventListener("online", soon);
    document.addEventListener("visibilitychange", () => document.hidden || soon());
    this.open();
  }

  open() {
    this.stopWaiting();
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let refusal = null; // an `error` about the connection itself, before a refusing close
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.heard = Date.now();
      this.onStatus(true, "");
      for (const [room, since] of this.rooms) this.raw({ type: "join", room, since: since() });
      for (const frame of this.outbox.values()) this.raw(frame);
      for (const frame of this.asked.splice(0)) this.raw(frame);
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      this.heard = Date.now();
      const frame = JSON.parse(event.data);
      if (frame.type === "hello") this.attempt = 0; // admitted: a later loss starts the backoff over
      if (frame.type === "ack") this.outbox.delete(frame.client_id);
      if (frame.type === "error" && this.outbox.has(frame.ref)) this.retryLater(frame);
      if (frame.type === "error" && frame.ref == null) refusal = frame;
      this.onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      if (REFUSED.has(event.code)) {
        const error = refusal ?? { code: "unauthorized", detail: event.reason || `closed with ${event.code}` };
        this.onStatus(false, `The server refused this connection: ${errorText(error)}`);
        this.onRefused(error);
        return;
      }
      this.waitToReconnect(backoffDelay(this.attempt));
      this.attempt += 1;
    });
  }

  // Count down to the next attempt, aloud, with "Reconnect now" on offer.
  waitToReconnect(delay) {
    const at = Date.now() + delay;
    const say = () => {
      const seconds = Math.max(1, Math.ceil((at - Date.now()) / 1000));
      this.onStatus(false, `Connection lost. Reconnecting in ${seconds} s…`, { retry: true });
    };
    this.retry = { timer: setTimeout(() => this.open(), delay), ticker: setInterval(say, 250) };
    say();
  }

  stopWaiting() {
    if (!this.retry) return;
    clearTimeout(this.retry.timer);
    clearInterval(this.retry.ticker);
    this.retry = null;
  }

  // Try now, if waiting to reconnect (not after a refusal: that needs `reopen`).
  reconnectNow() {
    if (!this.retry) return;
    this.onStatus(false, "Reconnecting…");
    this.open();
  }

  // Connect again at `url` (a guest's new name), whatever the state.
  reopen(url) {
    this.url = url;
    this.attempt = 0;
    const old = this.ws;
    this.open(); // this.ws is the new socket first: the old one's events are ignored
    old.close(1000);
  }

  // A request refused: try it again when the server says (rate_limited,
  // unavailable), at the next connect (internal_error), or never.
  retryLater({ ref, code, retry_after: after }) {
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
