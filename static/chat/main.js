// The app: the room list with unread counts, and one open room.
// connection.js owns the socket, roomstate.js the seq rules, render.js the DOM.
import { parseCommand } from "./commands.js";
import { Connection } from "./connection.js";
import {
  PALETTE, authorLabel, messageItem, noticeItem, placeMessage, quoteBlock, setBody, setPreview, setReactions,
} from "./render.js";
import { RoomState } from "./roomstate.js";

const $ = (id) => document.getElementById(id);
const app = $("app");
const list = $("messages");
const signedIn = app.dataset.authenticated === "1";
let me = { name: app.dataset.me, guest: !signedIn };
let connection = null;
let current = null; // the open room's slug
let loadingOlder = false;
let dmStarted = null; // the client_id of a "New message" on its way
let replyTo = null; // the message the composer answers: {seq, author, body, deleted}
const typingTimers = new Map();
const READ_EVERY_MS = 2000;

// slug -> what the page knows of a room; `state` is set once the room is followed.
const rooms = new Map();
for (const row of JSON.parse($("rooms-data").textContent)) rooms.set(row.slug, { ...row, online: new Map() });
// Who this user has blocked, by username.
let blocked = new Set(JSON.parse($("blocks-data").textContent));

// For the page's own HTTP calls (the session cookie needs Django's CSRF token).
const csrfToken = () => document.querySelector("input[name=csrfmiddlewaretoken]").value;

// A DM is named by the others in it; a room by its title.
const label = (r) => (r.kind === "dm" ? r.title.split(", ").filter((n) => n !== me.name).join(", ") : r.title);

function room(slug, { kind = "room", title = slug } = {}) {
  if (!rooms.has(slug)) {
    rooms.set(slug, { slug, title, kind, private: kind === "dm", role: null, unread: 0, mentions: 0, online: new Map() });
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `#${slug}`;
    a.dataset.room = slug;
    const name = document.createElement("span");
    name.className = "title";
    name.textContent = label(rooms.get(slug));
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.hidden = true;
    const mentions = badge.cloneNode();
    mentions.className = "mention-badge";
    a.append(name, mentions, badge);
    li.append(a);
    $(kind === "dm" ? "dm-list" : "room-list").append(li);
  }
  return rooms.get(slug);
}

const isMine = (author) => !me.guest && !author.guest && author.name === me.name;
const moderates = (slug) => ["owner", "moderator"].includes(rooms.get(slug)?.role);
const oldestShown = () => Number(list.querySelector("li[data-seq]")?.dataset.seq ?? 0);
const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 40;

// --- The socket ---------------------------------------------------------------

function connect() {
  if (connection) return;
  const url = new URL(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/chat/`);
  const guestName = $("guest-name")?.value.trim();
  if (!signedIn && guestName) url.searchParams.set("name", guestName);
  connection = new Connection(url, { onFrame, onStatus });
  // Signed-in users follow every room they belong to, for live unread counts.
  for (const r of rooms.values()) if (r.role) follow(r.slug);
}

function follow(slug) {
  const r = room(slug);
  if (r.state) return;
  // Start from the seq the page was rendered with; a room it did not know
  // starts from its latest page instead.
  r.fresh = r.last_seq === undefined;
  r.state = new RoomState(slug, r.last_seq ?? 0);
  connection.join(slug, () => (r.fresh ? null : r.state.low));
}

function onStatus(connected, text) {
  $("banner").textContent = text;
  $("banner").hidden = connected;
}

function onFrame(frame) {
  const r = frame.room && rooms.get(frame.room);
  switch (frame.type) {
    case "hello":
      me = frame.user;
      break;
    case "joined":
      r.title = frame.title;
      r.kind = frame.kind;
      document.querySelector(`a[data-room="${CSS.escape(r.slug)}"] .title`).textContent = label(r);
      if (frame.room === current) $("room-title").textContent = label(r);
      r.private = frame.private;
      r.guests_can_write = frame.guests_can_write;
      if (r.fresh) r.state.low = frame.messages.length ? frame.messages[0].seq - 1 : frame.last_seq;
      r.fresh = false;
      take(r, frame.messages, frame.complete);
      if (frame.room === current) {
        showInvite(r);
        showBlock(r);
        showGuestSetting(r);
        if (!oldestShown()) connection.raw({ type: "history", room: current, limit: 50 });
      }
      break;
    case "history":
      showPage(r, frame);
      break;
    case "mentions":
      showFound(frame, "inbox-list");
      break;
    case "search":
      showFound(frame, "search-results");
      break;
    case "message": {
      if (!r?.state) return;
      const hole = frame.seq > r.state.high + 1;
      take(r, [frame], true, { live: true });
      if (hole) fetchAfter(r.slug, r.state.low);
      break;
    }
    case "typing":
      if (frame.room === current) showTyping(authorLabel(frame.user));
      break;
    case "moderated":
      if (frame.room === current) {
        list.append(noticeItem(frame));
        if (atBottom()) list.scrollTop = list.scrollHeight;
      }
      break;
    case "blocks":
      blocked = new Set(frame.users);
      if (current) showBlock(rooms.get(current));
      break;
    case "added": // a new DM, or an invitation: follow it
      room(frame.room, frame).role ??= "member";
      follow(frame.room);
      break;
    case "ack":
      if (frame.client_id === dmStarted) {
        dmStarted = null;
        room(frame.room, { kind: "dm" });
        openRoom(frame.room);
      }
      break;
    case "left":
      if (frame.reason !== "leave") removed(r, frame.reason);
      break;
    case "presence":
      if (frame.online) r.online = new Map(frame.online.map((a) => [a.name + a.guest, a]));
      for (const a of frame.joined ?? []) r.online.set(a.name + a.guest, a);
      for (const a of frame.left ?? []) r.online.delete(a.name + a.guest);
      if (frame.room === current) showPresence(r);
      break;
    case "error":
      if (!connection.outbox.has(frame.ref)) {
        list.querySelector(`li.pending[data-client-id="${CSS.escape(frame.ref ?? "")}"]`)?.classList.replace("pending", "failed");
      }
      onStatus(false, `${frame.code.replaceAll("_", " ")}: ${frame.detail}`);
      setTimeout(() => connection.connected && onStatus(true, ""), 5000);
      break;
  }
}

function fetchAfter(slug, seq) {
  connection.raw({ type: "history", room: slug, after: seq, limit: 100 });
}

// New stream entries (from `joined`, live, or a gap fill): each seq once.
function take(r, entries, complete, { live = false } = {}) {
  for (const entry of entries) {
    if (!r.state.accept(entry.seq)) continue;
    const forMe = entry.kind === "message" && !isMine(entry.author);
    const named = forMe && entry.mentions.includes(me.name);
    if (r.slug === current) show(entry, { live: true });
    else if (forMe) {
      setUnread(r, r.unread + 1);
      if (named) setMentions(r, r.mentions + 1);
    }
    if (live && (named || (forMe && r.kind === "dm"))) notify(r, entry);
  }
  if (!complete && entries.length) fetchAfter(r.slug, entries.at(-1).seq);
  if (r.slug === current) markRead();
}

// A history page: older messages (scrolling up), the latest page, or a gap fill.
function showPage(r, frame) {
  if (!r?.state) return;
  const height = list.scrollHeight;
  for (const entry of frame.messages) {
    if (entry.seq > r.state.low) r.state.accept(entry.seq);
    if (r.slug === current) show(entry, { live: false });
  }
  if (frame.before !== null) {
    list.scrollTop += list.scrollHeight - height; // older messages above: keep the view still
    loadingOlder = false;
  } else if (frame.after === null) {
    list.scrollTop = list.scrollHeight; // the latest page
  } else if (!frame.complete && frame.messages.length) {
    fetchAfter(r.slug, frame.messages.at(-1).seq); // a long gap: the next page
  }
  if (r.slug === current) markRead();
  seek();
}

function showReactions(li, reactions, seq) {
  setReactions(li, reactions, { seq, me: me.name, canReact: signedIn });
}

function show(entry, { live }) {
  if (entry.kind !== "message") {
    const target = list.querySelector(`li[data-seq="${entry.target}"]`);
    if (!target) return;
    if (entry.kind === "react" || entry.kind === "unreact") showReactions(target, entry.reactions, entry.seq);
    else if (entry.kind === "preview") setPreview(target, entry.preview);
    else {
      setBody(target, { body: entry.body, deleted: entry.kind === "delete", edited: true });
      target.classList.toggle("mentioned", entry.mentions.includes(me.name)); // an edit may add or drop you
    }
    return;
  }
  if (list.querySelector(`li[data-seq="${entry.seq}"]`)) return;
  const stay = atBottom();
  const li = messageItem(entry, {
    mentioned: entry.mentions.includes(me.name),
    mine: isMine(entry.author),
    canReact: signedIn,
    canDelete: moderates(entry.room),
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
function removed(r, reason) {
  connection.rooms.delete(r.slug);
  r.state = null;
  r.role = null;
  if (r.slug !== current) return;
  $("composer").hidden = true;
  const why = {
    kick: "You were kicked from",
    ban: "You were banned from",
    removed: "You are no longer in",
    private: "Only members may now read",
  }[reason];
  onStatus(false, `${why} #${r.slug}.`);
}

// --- Read markers and unread counts -------------------------------------------

function setBadge(r, selector, text, count) {
  const badge = document.querySelector(`a[data-room="${CSS.escape(r.slug)}"] ${selector}`);
  if (badge) {
    badge.textContent = text;
    badge.hidden = count === 0;
  }
}

function setUnread(r, count) {
  r.unread = count;
  setBadge(r, ".badge", count, count);
}

// Unread messages that @-name the user: "@2" beside the unread count.
function setMentions(r, count) {
  r.mentions = count;
  setBadge(r, ".mention-badge", `@${count}`, count);
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
function markRead() {
  const r = rooms.get(current);
  if (!r?.state || !atBottom() || document.hidden) return;
  setUnread(r, 0);
  setMentions(r, 0);
  if (!signedIn || r.readTimer) return;
  const send = () => {
    r.readTimer = null;
    if (r.readSent === r.state.high || !connection.connected) return;
    r.readSent = r.state.high;
    r.readAt = Date.now();
    connection.raw({ type: "read", room: r.slug, seq: r.state.high });
  };
  const wait = (r.readAt ?? 0) + READ_EVERY_MS - Date.now();
  if (wait <= 0) send();
  else r.readTimer = setTimeout(send, wait);
}

// --- Mentions and links to one message -----------------------------------------

let target = null; // {slug, seq}: the message to show once its page is in

// Open a room at one message: page back until it is shown, then point at it.
function openAt(slug, seq) {
  target = { slug, seq };
  if (slug === current) seek();
  else openRoom(slug);
}

function seek() {
  if (!target || target.slug !== current) return;
  const li = list.querySelector(`li[data-seq="${target.seq}"]`);
  if (li) {
    target = null;
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 2000);
  } else if (oldestShown() > target.seq && !loadingOlder) {
    loadingOlder = true;
    connection.raw({ type: "history", room: current, before: oldestShown(), limit: 100 });
  }
}

// Messages from many rooms (the inbox, search results): each opens its room at it.
function showFound(frame, listId) {
  const items = frame.messages.map((message) => {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    const r = room(message.room);
    open.textContent = `${r.kind === "dm" ? label(r) : `#${message.room}`} · ${authorLabel(message.author)}: ${message.body}`;
    open.addEventListener("click", () => openAt(message.room, message.seq));
    li.append(open);
    return li;
  });
  $(listId).replaceChildren(...items);
  $(`${listId}-empty`).hidden = items.length > 0;
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) return;
  connect();
  connection.raw({ type: "search", q, limit: 20 });
});

$("inbox")?.addEventListener("toggle", (event) => {
  if (event.target.open) { connect(); connection.raw({ type: "mentions", limit: 20 }); }
});
const notifyButton = $("notify");
if (notifyButton && "Notification" in window && Notification.permission === "default") {
  notifyButton.hidden = false;
  notifyButton.addEventListener("click", async () => {
    await Notification.requestPermission();
    notifyButton.hidden = true;
  });
}

// --- The open room --------------------------------------------------------------

function openRoom(slug) {
  if (!slug || slug === current) return;
  connect();
  const previous = current;
  current = slug;
  const r = room(slug);
  list.replaceChildren();
  $("room-title").textContent = label(r);
  $("jump").hidden = true;
  setReply(null);
  typingTimers.clear();
  renderTyping();
  showPresence(r);
  showInvite(r);
  showBlock(r);
  showGuestSetting(r);
  for (const a of document.querySelectorAll("a[data-room]")) {
    if (a.dataset.room === slug) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // Guests follow only the open room.
  if (!signedIn && previous && previous !== slug) {
    connection.raw({ type: "leave", room: previous });
    connection.rooms.delete(previous);
    rooms.get(previous).state = null;
  }
  if (r.state) connection.raw({ type: "history", room: slug, limit: 50 });
  else follow(slug);
  if (location.hash !== `#${slug}`) location.hash = slug;
  $("body").focus();
}

function showPresence(r) {
  const names = [...r.online.values()].map(authorLabel);
  $("presence").textContent = names.length ? `Online: ${names.join(", ")}` : "";
}

function showInvite(r) {
  $("invite").hidden = !(r.private && ["owner", "moderator"].includes(r.role));
  $("invite").action = `/rooms/${encodeURIComponent(r.slug)}/invite`;
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
function showBlock(r) {
  // A DM's title (its members) is known once it is joined or announced.
  const known = signedIn && r.kind === "dm" && r.title && r.title !== r.slug;
  const others = known ? r.title.split(", ").filter((n) => n !== me.name) : [];
  const button = $("block");
  button.hidden = others.length !== 1;
  button.dataset.user = others[0] ?? "";
  button.textContent = `${blocked.has(others[0]) ? "Unblock" : "Block"} ${others[0] ?? ""}`;
}

function showTyping(name) {
  clearTimeout(typingTimers.get(name));
  typingTimers.set(name, setTimeout(() => { typingTimers.delete(name); renderTyping(); }, 4000));
  renderTyping();
}

function renderTyping() {
  const names = [...typingTimers.keys()];
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

// --- Events ---------------------------------------------------------------------

// "New message": the first message makes the DM; its ack opens it.
$("dm-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const users = $("dm-to").value.split(/[\s,]+/).filter(Boolean);
  const body = $("dm-body").value;
  if (!users.length || !body.trim()) return;
  connect();
  dmStarted = connection.request({ type: "dm", users, body }).client_id;
  event.target.reset();
  $("new-dm").open = false;
});

document.querySelector(".sidebar").addEventListener("click", (event) => {
  const slug = event.target.closest("a[data-room]")?.dataset.room;
  if (slug) { event.preventDefault(); openRoom(slug); }
});
window.addEventListener("hashchange", () => openRoom(decodeURIComponent(location.hash.slice(1))));
document.addEventListener("visibilitychange", markRead);

list.addEventListener("scroll", () => {
  if (atBottom()) { $("jump").hidden = true; markRead(); }
  if (list.scrollTop < 80 && !loadingOlder && oldestShown() > 1) {
    loadingOlder = true;
    connection.raw({ type: "history", room: current, before: oldestShown(), limit: 50 });
  }
});
$("jump").addEventListener("click", () => { list.scrollTop = list.scrollHeight; });
$("guests-can-write").addEventListener("change", async (event) => {
  const r = rooms.get(current);
  const response = await fetch(`/api/v1/rooms/${encodeURIComponent(r.slug)}`, {
    method: "PATCH",
    body: JSON.stringify({ guests_can_write: event.target.checked }),
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
  });
  const reply = await response.json();
  if (!response.ok) onStatus(false, `${reply.code.replaceAll("_", " ")}: ${reply.detail}`);
  else r.guests_can_write = reply.guests_can_write;
  showGuestSetting(r);
});
$("block").addEventListener("click", (event) => {
  const user = event.currentTarget.dataset.user;
  connection.raw({ type: "block", user, on: !blocked.has(user) });
});

let lastTyping = 0;
$("body").addEventListener("input", () => {
  if (current && Date.now() - lastTyping > 3000) {
    lastTyping = Date.now();
    connection.raw({ type: "typing", room: current });
  }
});
// Enter sends (or saves an edit); Shift+Enter starts a new line.
function enterSubmits(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    event.target.form.requestSubmit();
  }
}
$("body").addEventListener("keydown", enterSubmits);
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  let body = $("body").value;
  if (!current || !body.trim()) return;
  // "/ban …" and the like are commands; "//…" sends the text with one slash.
  if (body.startsWith("//")) body = body.slice(1);
  else if (body.startsWith("/")) {
    const command = parseCommand(body, current);
    if (command?.error) return onStatus(false, command.error);
    if (command) {
      connection.raw(command.frame);
      $("body").value = "";
      return;
    }
  }
  const frame = connection.request({ type: "send", room: current, body, reply_to: replyTo?.seq ?? null });
  list.append(messageItem({ ...frame, author: me, quote: replyTo }, { pending: true }));
  list.scrollTop = list.scrollHeight;
  $("body").value = "";
  setReply(null);
  lastTyping = 0; // others cleared "typing" on this message: announce the next one at once
});

// Attach a file: upload it, then send a message that holds it (the text
// typed, or the file's name).
$("file")?.addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file || !current) return;
  const room = current;
  const form = new FormData();
  form.append("file", file);
  onStatus(false, `Uploading ${file.name}…`);
  const response = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/attachments`, {
    method: "POST",
    body: form,
    headers: { "X-CSRFToken": csrfToken() },
  });
  const reply = await response.json();
  if (!response.ok) return onStatus(false, `${reply.code.replaceAll("_", " ")}: ${reply.detail}`);
  onStatus(true, "");
  const body = $("body").value.trim() ? $("body").value : file.name;
  connection.request({ type: "send", room, body, attachment: reply.id, reply_to: replyTo?.seq ?? null });
  $("body").value = "";
  setReply(null);
});

// The message the next send answers (null: none), shown above the composer.
function setReply(message) {
  replyTo = message;
  $("replying").hidden = !message;
  if (message) {
    $("replying-quote").replaceChildren(quoteBlock(message));
    $("body").focus();
  }
}
$("reply-cancel").addEventListener("click", () => setReply(null));

function react(li, emoji, on) {
  connection.request({ type: "react", room: current, seq: Number(li.dataset.seq), emoji, on });
}

// A row of emoji to react with, under the message; a pick or Escape closes it.
function openPalette(li) {
  list.querySelector(".palette")?.remove();
  const palette = document.createElement("div");
  palette.className = "palette";
  palette.setAttribute("role", "group");
  palette.setAttribute("aria-label", "Pick a reaction");
  for (const emoji of PALETTE) {
    const pick = document.createElement("button");
    pick.type = "button";
    pick.dataset.pick = emoji;
    pick.textContent = emoji;
    palette.append(pick);
  }
  palette.addEventListener("keydown", (key) => key.key === "Escape" && palette.remove());
  li.append(palette);
  palette.firstElementChild.focus();
}

// Replies, reactions, and editing or deleting one's own messages, in place.
list.addEventListener("click", (event) => {
  const li = event.target.closest("li[data-seq]");
  const quote = event.target.closest("[data-quote]");
  if (quote && li) {
    const original = list.querySelector(`li[data-seq="${quote.dataset.quote}"]`);
    original?.scrollIntoView({ block: "center" });
    original?.classList.add("flash");
    setTimeout(() => original?.classList.remove("flash"), 1500);
    return;
  }
  const pick = event.target.closest("[data-pick]");
  if (pick) {
    react(li, pick.dataset.pick, true);
    pick.parentElement.remove();
    return;
  }
  const chip = event.target.closest("button.reaction");
  if (chip) return react(li, chip.dataset.emoji, chip.getAttribute("aria-pressed") !== "true");
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const seq = Number(li.dataset.seq);
  if (button.dataset.action === "reply") {
    return setReply({ seq, author: li.author, body: li.bodyText.slice(0, 200), deleted: false });
  }
  if (button.dataset.action === "react") return openPalette(li);
  if (button.dataset.action === "delete") {
    connection.request({ type: "delete", room: current, seq });
    setBody(li, { deleted: true });
    return;
  }
  const editor = document.createElement("form");
  editor.className = "editor";
  const input = document.createElement("textarea");
  const original = li.bodyText;
  input.value = original;
  input.setAttribute("aria-label", "Edit message");
  const save = document.createElement("button");
  save.textContent = "Save";
  editor.append(input, save);
  li.querySelector(".body").replaceWith(editor);
  input.focus();
  input.addEventListener("keydown", enterSubmits);
  editor.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const body = document.createElement("div");
    body.className = "body";
    editor.replaceWith(body);
    if (!input.value.trim() || input.value === original) return setBody(li, { body: original });
    connection.request({ type: "edit", room: current, seq, body: input.value });
    setBody(li, { body: input.value, edited: true });
  });
});

// Signed-in users connect at once, for unread counts; guests when they pick a room.
if (signedIn) connect();
if (location.hash.length > 1 && (signedIn || $("guest-name"))) openRoom(decodeURIComponent(location.hash.slice(1)));
