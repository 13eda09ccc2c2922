// The socket: reconnects with exponential backoff and jitter, rejoins rooms
// with `since`, and resends every unacknowledged message with its client_id.

export class Connection {
  constructor(url, { onFrame, onStatus }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.outbox = new Map(); // client_id -> send frame, until its ack
    this.rooms = new Map(); // slug -> () => since
    this.attempt = 0;
    this.ws = null;
    this.open();
  }

  open() {
    this.ws = new WebSocket(this.url);
    this.ws.addEventListener("open", () => {
      this.attempt = 0;
      this.onStatus("");
      for (const [room, since] of this.rooms) this.raw({ type: "join", room, since: since() });
      for (const frame of this.outbox.values()) this.raw(frame);
    });
    this.ws.addEventListener("message", (event) => {
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
