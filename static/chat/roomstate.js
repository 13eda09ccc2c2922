// The seq bookkeeping of one room: which messages we hold, and what is missing.
// Pure logic, no DOM and no socket, so every client can share the same rules.

export class RoomState {
  constructor(slug) {
    this.slug = slug;
    this.lastSeq = 0; // highest seq held; `join` sends it back as `since`
    this.seen = new Set();
  }

  // Take one message. Returns "new", "duplicate", or "gap" (new, but seqs
  // between lastSeq and this one are missing: fetch them with `history`).
  accept(message) {
    if (this.seen.has(message.seq)) return "duplicate";
    this.seen.add(message.seq);
    const gap = this.lastSeq > 0 && message.seq > this.lastSeq + 1;
    this.lastSeq = Math.max(this.lastSeq, message.seq);
    return gap ? "gap" : "new";
  }

  // The `since` to send on (re)join: null on the first join, for the latest page.
  since() {
    return this.lastSeq > 0 ? this.lastSeq : null;
  }
}
