// The page's one socket, opened when first needed, and the rooms it follows.
// main.js says once what to do with each frame and whose socket it is
// (`setup`); any module may then `connect()` or `follow(slug)`.
import { Connection } from "./connection.js";
import { RoomState } from "./roomstate.js";
import { chat, onStatus, room, rooms } from "./state.js";

const hooks = { onFrame: null, socketUrl: null, onRefused: null };

export function setup(given) {
  Object.assign(hooks, given);
}

// Open the socket, once; false for a guest who has not chosen a valid name yet.
export function connect() {
  if (chat.connection) return true;
  const url = hooks.socketUrl();
  if (!url) return false;
  chat.connection = new Connection(url, { onFrame: hooks.onFrame, onStatus, onRefused: hooks.onRefused });
  // Signed-in users follow every room they belong to, for live unread counts.
  for (const r of rooms.values()) if (r.role) follow(r.slug);
  return true;
}

export function follow(slug) {
  const r = room(slug);
  if (r.state) return;
  // Start from the seq the page was rendered with; a room it did not know
  // starts from its latest page instead.
  r.fresh = r.last_seq === undefined;
  r.state = new RoomState(slug, r.last_seq ?? 0);
  chat.connection.join(slug, () => (r.fresh ? null : r.state.low));
}
