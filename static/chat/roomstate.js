// Which seqs of one room the page holds: the same rules as chat/roomstate.py,
// and tested against the same cases (tests/roomstate_cases.json).
// `low` is the contiguous watermark: every seq <= low is held; seqs that
// arrived past a hole wait in `above` until it fills.

export class RoomState {
  constructor(slug, low = 0) {
    this.slug = slug;
    this.low = low;
    this.above = new Set();
  }

  // Record a seq; false if it was already held (a duplicate to drop).
  accept(seq) {
    if (seq <= this.low || this.above.has(seq)) return false;
    this.above.add(seq);
    while (this.above.has(this.low + 1)) {
      this.low += 1;
      this.above.delete(this.low);
    }
    return true;
  }

  // The highest seq held.
  get high() {
    return this.above.size ? Math.max(...this.above) : this.low;
  }
}
