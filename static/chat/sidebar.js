// The sidebar: the room and DM lists with their unread and mention badges,
// and "New message", which starts a DM.
import { apiCall, errorText } from "./api.js";
import { showCount } from "./composer.js";
import { connect, follow } from "./live.js";
import { go } from "./nav.js";
import { $, chat, events, label, room, rooms } from "./state.js";

// A room the page did not know gets its link (the others came with the page).
events.addEventListener("room-added", ({ detail: r }) => {
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.href = `#${r.slug}`;
  a.dataset.room = r.slug;
  a.title = label(r);
  const name = document.createElement("span");
  name.className = "title";
  name.dir = "auto";
  name.textContent = label(r);
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.hidden = true;
  const mentions = badge.cloneNode();
  mentions.className = "mention-badge";
  a.append(name, mentions, badge);
  li.append(a);
  $(r.kind === "dm" ? "dm-list" : "room-list").append(li);
});

// The room's name in its link, once its title or members are known.
export function showLabel(r) {
  const a = document.querySelector(`a[data-room="${CSS.escape(r.slug)}"]`);
  a.title = label(r);
  a.querySelector(".title").textContent = label(r);
}

function setBadge(r, selector, text, count) {
  const badge = document.querySelector(`a[data-room="${CSS.escape(r.slug)}"] ${selector}`);
  if (badge) {
    badge.textContent = text;
    badge.hidden = count === 0;
  }
}

export function setUnread(r, count) {
  r.unread = count;
  setBadge(r, ".badge", count, count);
  showUnreadTotal();
}

// The unread messages of every room, in the tab's title: "(3) Chat".
const TITLE = document.title;
export function showUnreadTotal() {
  const total = [...rooms.values()].reduce((sum, r) => sum + (r.unread ?? 0), 0);
  document.title = total ? `(${total}) ${TITLE}` : TITLE;
  if (total) $("rooms-toggle").dataset.unread = total; // a phone's drawer is shut: say so on its button
  else delete $("rooms-toggle").dataset.unread;
}

// Unread messages that @-name the user: "@2" beside the unread count.
export function setMentions(r, count) {
  r.mentions = count;
  setBadge(r, ".mention-badge", `@${count}`, count);
}

// "New message": the first message makes the DM; its ack opens it, and
// only then is the form cleared. A refusal is said beside the form.
$("dm-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const users = $("dm-to").value.split(/[\s,]+/).filter(Boolean);
  const body = $("dm-body").value;
  if (!users.length || !body.trim() || !showCount($("dm-body"), $("dm-counter"))) return;
  connect();
  formError("dm-error", null);
  chat.dmStarted = chat.connection.request({ type: "dm", users, body }).client_id;
});
$("dm-body")?.addEventListener("input", () => showCount($("dm-body"), $("dm-counter")));

export function dmStarted(slug) {
  chat.dmStarted = null;
  $("dm-form").reset();
  $("new-dm").open = false;
  room(slug, { kind: "dm" });
  go(slug);
}

export function dmFailed(error) {
  chat.dmStarted = null;
  formError("dm-error", error);
}

// What went wrong with a form, beside it (null: nothing); what was typed stays.
function formError(id, error) {
  $(id).textContent = error ? errorText(error) : "";
  $(id).hidden = !error;
}

// "New room": made through the API, so a refusal (a name taken) keeps the form.
$("room-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const { slug, title, private: only } = form.elements; // form.title is the form's own
  const json = { slug: slug.value, title: title.value, private: only.checked };
  const { ok, reply } = await apiCall("/rooms", { method: "POST", json });
  formError("room-error", ok ? null : reply);
  if (!ok) return slug.focus();
  form.reset();
  $("new-room").open = false;
  Object.assign(room(reply.slug, reply), reply);
  connect();
  follow(reply.slug);
  go(reply.slug);
});

document.querySelector(".sidebar").addEventListener("click", (event) => {
  const slug = event.target.closest("a[data-room]")?.dataset.room;
  if (slug) { event.preventDefault(); go(slug); }
});

// Desktop notifications, once the user allows them.
const notifyButton = $("notify");
if (notifyButton && "Notification" in window && Notification.permission === "default") {
  notifyButton.hidden = false;
  notifyButton.addEventListener("click", async () => {
    await Notification.requestPermission();
    notifyButton.hidden = true;
  });
}

// On a phone the sidebar is a drawer, opened from the room's header.
export function setDrawer(open) {
  $("app").classList.toggle("drawer-open", open);
  $("rooms-toggle").setAttribute("aria-expanded", String(open));
  if (open) document.querySelector(".sidebar a[data-room], .sidebar input")?.focus();
}
$("rooms-toggle").addEventListener("click", () => setDrawer(!$("app").classList.contains("drawer-open")));
$("drawer-shade").addEventListener("click", () => setDrawer(false));
document.addEventListener("keydown", (key) => key.key === "Escape" && setDrawer(false));
