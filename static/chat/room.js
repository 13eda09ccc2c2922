// The open room: its messages as they come (live, paged, or filling a gap),
// read markers, who is online and typing (actions.js acts on a message).
import { apiCall, errorText } from "./api.js";
import { setReply } from "./composer.js";
import { showExport } from "./exports.js";
import { connect, follow } from "./live.js";
import { askName } from "./me.js";
import { authorLabel, messageItem, placeMessage, setBody, setPreview, setReactions } from "./render.js";
import { setDrawer, setMentions, setUnread } from "./sidebar.js";
import {
  $, atBottom, chat, isMine, label, list, moderates, oldestShown, onStatus, others, room, rooms, signedIn,
} from "./state.js";

const READ_EVERY_MS = 2000;
const typingTimers = new Map();

export function openRoom(slug) {
  if (!slug || slug === chat.current) return;
  const named = connect();
  const previous = chat.current;
  chat.current = slug;
  const r = room(slug);
  list.replaceChildren();
  showTitle(r);
  $("jump").hidden = true;
  setDrawer(false);
  setReply(null);
  typingTimers.clear();
  renderTyping();
  showRoomControls(r);
  for (const a of document.querySelectorAll("a[data-room]")) {
    if (a.dataset.room === slug) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // The first message after the read marker gets a "New messages" line above it.
  chat.unreadAfter = signedIn && r.unread > 0 ? r.last_read_seq : null;
  r.loaded = false;
  if (location.hash !== `#${slug}`) location.hash = slug;
  if (!named) {
    showListState(r);
    return askName(); // it is followed once a name is chosen
  }
  // Guests follow only the open room.
  if (!signedIn && previous && previous !== slug && rooms.get(previous).state) {
    chat.connection.raw({ type: "leave", room: previous });
    chat.connection.rooms.delete(previous);
    rooms.get(previous).state = null;
  }
  if (r.state) chat.connection.raw({ type: "history", room: slug, limit: 50 });
  else follow(slug);
  showListState(r);
  $("body").focus();
}

// Open a room at one message: page back until it is shown, then point at it.
export function openAt(slug, seq) {
  chat.target = { slug, seq };
  if (slug === chat.current) seek();
  else openRoom(slug);
}

// Called as pages come in: show the target message once it is there.
export function seek() {
  const target = chat.target;
  if (!target || target.slug !== chat.current) return;
  const li = list.querySelector(`li[data-seq="${target.seq}"]`);
  if (li) {
    chat.target = null;
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 2000);
  } else if (oldestShown() > target.seq && !chat.loadingOlder) {
    chat.loadingOlder = true;
    chat.connection.raw({ type: "history", room: chat.current, before: oldestShown(), limit: 100 });
  }
}

// The room's name in the header: one line, the whole of it on hover.
export function showTitle(r) {
  $("room-title").textContent = label(r);
  $("room-title").title = label(r);
}

// Over the list: loading, or an empty room's invitation to write.
function showListState(r) {
  const state = $("list-state");
  if (!chat.connection) state.textContent = "Choose a name (top left) to join this room.";
  else if (!r.loaded) state.textContent = "Loading messages…";
  else state.textContent = "No messages yet. Say hello!";
  state.hidden = r.loaded && Boolean(list.querySelector("li.message"));
}

// The "New messages" line: above the first message past the read marker,
// once the list reaches back to the marker (else the first shown is not the first unread).
function showUnreadLine() {
  const after = chat.unreadAfter;
  if (after == null) return;
  const first = [...list.querySelectorAll("li[data-seq]")].find((li) => Number(li.dataset.seq) > after);
  let line = list.querySelector("li.unread-line");
  if (!first || oldestShown() > after + 1) return line?.remove();
  if (!line) {
    line = document.createElement("li");
    line.className = "unread-line";
    line.setAttribute("role", "separator");
    line.textContent = "New messages";
  }
  if (first.previousElementSibling !== line) first.before(line);
}

// What the header and composer show of the open room.
export function showRoomControls(r) {
  showPresence(r);
  showInvite(r);
  showBlock(r);
  showGuestSetting(r);
  showExport(r);
}

export function fetchAfter(slug, seq) {
  chat.connection.raw({ type: "history", room: slug, after: seq, limit: 100 });
}

// New stream entries (from `joined`, live, or a gap fill): each seq once.
export function take(r, entries, complete, { live = false } = {}) {
  for (const entry of entries) {
    if (!r.state.accept(entry.seq)) continue;
    const forMe = entry.kind === "message" && !isMine(entry.author);
    const named = forMe && entry.mentions.includes(chat.me.name);
    if (r.slug === chat.current) show(entry, { live: true });
    else if (forMe) {
      setUnread(r, r.unread + 1);
      if (named) setMentions(r, r.mentions + 1);
    }
    if (live && (named || (forMe && r.kind === "dm"))) notify(r, entry);
  }
  if (!complete && entries.length) fetchAfter(r.slug, entries.at(-1).seq);
  if (r.slug === chat.current) {
    loaded(r);
    markRead();
  }
}

// Entries came for the open room: no longer loading, and the unread line placed.
function loaded(r) {
  r.loaded = true;
  showListState(r);
  showUnreadLine();
}

// A history page: older messages (scrolling up), the latest page, or a gap fill.
export function showPage(r, frame) {
  if (!r?.state) return;
  const height = list.scrollHeight;
  for (const entry of frame.messages) {
    if (entry.seq > r.state.low) r.state.accept(entry.seq);
    if (r.slug === chat.current) show(entry, { live: false });
  }
  const open = r.slug === chat.current;
  if (open) loaded(r);
  if (frame.before !== null) {
    list.scrollTop += list.scrollHeight - height; // older messages above: keep the view still
    chat.loadingOlder = false;
  } else if (frame.after === null) {
    // The latest page: at the bottom, unless that hides where the unread ones begin.
    list.scrollTop = list.scrollHeight;
    const line = list.querySelector("li.unread-line");
    if (line) list.scrollTop = Math.min(list.scrollTop, line.offsetTop - list.offsetTop - 8);
  } else if (!frame.complete && frame.messages.length) {
    fetchAfter(r.slug, frame.messages.at(-1).seq); // a long gap: the next page
  }
  if (open) markRead();
  seek();
}

function showReactions(li, reactions, seq) {
  setReactions(li, reactions, { seq, me: chat.me.name, canReact: signedIn });
}

// An edit, deletion, reaction or preview, shown on the message it is about.
function change(target, entry) {
  if (entry.kind === "react" || entry.kind === "unreact") showReactions(target, entry.reactions, entry.seq);
  else if (entry.kind === "preview") setPreview(target, entry.preview);
  else {
    setBody(target, { body: entry.body, deleted: entry.kind === "delete", edited: true });
    target.classList.toggle("mentioned", entry.mentions.includes(chat.me.name)); // an edit may add or drop you
  }
}

function show(entry, { live }) {
  if (entry.kind !== "message") {
    const target = list.querySelector(`li[data-seq="${entry.target}"]`);
    if (!target) return;
    // A change that grows a message (a reaction, a preview) keeps the bottom in view.
    const stay = atBottom();
    change(target, entry);
    if (stay) list.scrollTop = list.scrollHeight;
    return;
  }
  if (list.querySelector(`li[data-seq="${entry.seq}"]`)) return;
  const stay = atBottom();
  const li = messageItem(entry, {
    mentioned: entry.mentions.includes(chat.me.name),
    mine: isMine(entry.author),
    canReact: signedIn,
    canDelete: moderates(entry.room),
    guest: !signedIn,
  });
  showReactions(li, entry.reactions, entry.seq);
  placeMessage(list, li);
  if (!live) return;
  if (stay || isMine(entry.author)) list.scrollTop = list.scrollHeight;
  else $("jump").hidden = false;
  if (!isMine(entry.author)) $("announcer").textContent = `${authorLabel(entry.author)}: ${entry.body}`;
  if (typingTimers.delete(authorLabel(entry.author))) renderTyping(); // they sent what they typed
}

// Kicked, banned or removed: stop following the room (no rejoin on reconnect).
export function removed(r, reason) {
  chat.connection.rooms.delete(r.slug);
  r.state = null;
  r.role = null;
  if (r.slug !== chat.current) return;
  $("composer").hidden = true;
  const why = {
    kick: "You were kicked from",
    ban: "You were banned from",
    removed: "You are no longer in",
    private: "Only members may now read",
  }[reason];
  onStatus(false, `${why} #${r.slug}.`);
}

// A desktop notification for a message to the user, while the tab is hidden
// (and only once they allowed it: the button in the sidebar asks).
function notify(r, entry) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const where = r.kind === "dm" ? label(r) : `#${r.slug}`;
  const note = new Notification(`${authorLabel(entry.author)} in ${where}`, { body: entry.body, tag: r.slug });
  note.addEventListener("click", () => { window.focus(); openAt(r.slug, entry.seq); });
}

// The open room, scrolled to the bottom in a visible tab, counts as read.
// The marker goes to the server at most every 2 s, always with the latest seq.
export function markRead() {
  const r = rooms.get(chat.current);
  if (!r?.state || !atBottom() || document.hidden) return;
  setUnread(r, 0);
  setMentions(r, 0);
  r.last_read_seq = r.state.high; // where "New messages" goes, the next time it is opened
  if (!signedIn || r.readTimer) return;
  const send = () => {
    r.readTimer = null;
    if (r.readSent === r.state.high || !chat.connection.connected) return;
    r.readSent = r.state.high;
    r.readAt = Date.now();
    chat.connection.raw({ type: "read", room: r.slug, seq: r.state.high });
  };
  const wait = (r.readAt ?? 0) + READ_EVERY_MS - Date.now();
  if (wait <= 0) send();
  else r.readTimer = setTimeout(send, wait);
}

// A big room's `presence` names only some of those online: show the count, and up to 20 names.
const NAMES_SHOWN = 20;

export function showPresence(r) {
  const names = [...r.online.values()].map(authorLabel);
  const count = Math.max(r.count ?? 0, names.length);
  const more = count > NAMES_SHOWN ? ` and ${count - Math.min(NAMES_SHOWN, names.length)} more` : "";
  $("presence").textContent = names.length ? `Online (${count}): ${names.slice(0, NAMES_SHOWN).join(", ")}${more}` : "";
}

function showInvite(r) {
  $("invite").hidden = !(r.private && ["owner", "moderator"].includes(r.role));
  $("invite").action = `/rooms/${encodeURIComponent(r.slug)}/invite`;
  $("invite-note").hidden = true;
}

// Whether guests may write: owners and moderators of a public room change it;
// a guest where they may not gets a hint to sign in instead of the composer.
function showGuestSetting(r) {
  $("guests-setting").hidden = !(r.kind === "room" && !r.private && ["owner", "moderator"].includes(r.role));
  $("guests-can-write").checked = r.guests_can_write !== false;
  const readOnly = !signedIn && r.guests_can_write === false;
  $("composer").hidden = readOnly;
  $("read-only").hidden = !readOnly;
}

// In a DM with one other person: a button to block or unblock them.
export function showBlock(r) {
  const [other, ...more] = signedIn && r.kind === "dm" ? others(r) : [];
  const button = $("block");
  button.hidden = other === undefined || more.length > 0;
  button.dataset.user = other ?? "";
  button.textContent = `${chat.blocked.has(other) ? "Unblock" : "Block"} ${other ?? ""}`;
}

export function showTyping(name) {
  clearTimeout(typingTimers.get(name));
  typingTimers.set(name, setTimeout(() => { typingTimers.delete(name); renderTyping(); }, 4000));
  renderTyping();
}

function renderTyping() {
  const names = [...typingTimers.keys()];
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

list.addEventListener("scroll", () => {
  if (atBottom()) { $("jump").hidden = true; markRead(); }
  if (list.scrollTop < 80 && !chat.loadingOlder && oldestShown() > 1) {
    chat.loadingOlder = true;
    chat.connection.raw({ type: "history", room: chat.current, before: oldestShown(), limit: 50 });
  }
});
$("jump").addEventListener("click", () => { list.scrollTop = list.scrollHeight; });
$("guests-can-write").addEventListener("change", async (event) => {
  const r = rooms.get(chat.current);
  const path = `/rooms/${encodeURIComponent(r.slug)}`;
  const { ok, reply } = await apiCall(path, { method: "PATCH", json: { guests_can_write: event.target.checked } });
  if (!ok) onStatus(false, errorText(reply));
  else r.guests_can_write = reply.guests_can_write;
  showGuestSetting(r);
});
// Invite through the API: a refusal (no such user) is said beside the name, which stays.
$("invite").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("invite-name").value.trim();
  const path = `/rooms/${encodeURIComponent(chat.current)}/members/${encodeURIComponent(name)}`;
  const { ok, reply } = await apiCall(path, { method: "PUT" });
  $("invite-note").textContent = ok ? `${name} can now use #${chat.current}.` : errorText(reply);
  $("invite-note").classList.toggle("error", !ok);
  $("invite-note").hidden = false;
  if (ok) $("invite-name").value = "";
});
$("block").addEventListener("click", (event) => {
  const user = event.currentTarget.dataset.user;
  chat.connection.raw({ type: "block", user, on: !chat.blocked.has(user) });
});
