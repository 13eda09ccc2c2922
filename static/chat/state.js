// What the page knows, shared by its modules: who this is, the rooms, the
// open room, and the few DOM lookups every module uses.
export const $ = (id) => document.getElementById(id);
export const app = $("app");
export const list = $("messages");
export const signedIn = app.dataset.authenticated === "1";

export const chat = {
  me: { name: app.dataset.me, guest: !signedIn },
  // What the server takes: the page's copy, then the one `hello` gives.
  limits: { max_body_chars: Number(app.dataset.maxBody) },
  connection: null, // the Connection, once the page connects
  current: null, // the open room's slug
  loadingOlder: false, // a page of older messages is on its way
  dmStarted: null, // the client_id of a "New message" on its way
  replyTo: null, // the message the composer answers: {seq, author, body, deleted}
  target: null, // {slug, seq}: the message to show once its page is in
  // Who this user has blocked, by username.
  blocked: new Set(JSON.parse($("blocks-data").textContent)),
};

// slug -> what the page knows of a room; `state` is set once the room is followed.
export const rooms = new Map();
for (const row of JSON.parse($("rooms-data").textContent)) rooms.set(row.slug, { ...row, online: new Map() });

// What happens to what the page knows, for the modules that show it:
// "room-added" (detail: the room) when a room the page did not know appears.
export const events = new EventTarget();

// What the page knows of room `slug`, adding it if it is new.
export function room(slug, { kind = "room", title = slug, members = [] } = {}) {
  if (!rooms.has(slug)) {
    rooms.set(slug, {
      slug, title, kind, members, private: kind === "dm", role: null, unread: 0, mentions: 0, online: new Map(),
    });
    events.dispatchEvent(new CustomEvent("room-added", { detail: rooms.get(slug) }));
  }
  return rooms.get(slug);
}

// A DM is named by the others in it (its `members`); a room by its title.
export const label = (r) => (r.kind === "dm" && r.members?.length ? others(r).join(", ") : r.title);
export const others = (r) => (r.members ?? []).filter((name) => name !== chat.me.name);

export const isMine = (author) => !chat.me.guest && !author.guest && author.name === chat.me.name;
export const moderates = (slug) => ["owner", "moderator"].includes(rooms.get(slug)?.role);
export const oldestShown = () => Number(list.querySelector("li[data-seq]")?.dataset.seq ?? 0);
export const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 40;

// The banner: hidden while connected and all is well, else says what is
// wrong; `retry` offers "Reconnect now".
export function onStatus(connected, text, { retry = false } = {}) {
  $("banner").textContent = text;
  $("reconnect").hidden = !retry;
  $("banner").hidden = connected;
}
