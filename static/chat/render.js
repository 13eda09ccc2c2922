// Rendering. User text is only ever set with textContent or as text nodes:
// never parsed as HTML. Links become anchors for http(s) URLs only.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric", year: "numeric" });
const DAY_MS = 24 * 60 * 60 * 1000;
// A message longer than this is shown cut, with "Show more".
const LONG_CHARS = 700;
const LONG_LINES = 12;
const URL_PATTERN = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
const GROUP_MS = 5 * 60 * 1000;

export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    fragment.append(text.slice(last, match.index));
    const a = document.createElement("a");
    a.href = match[0];
    a.textContent = match[0];
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    fragment.append(a);
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

// How a person is named wherever they are shown: a guest always as one.
export function authorLabel(author) {
  return author.name + (author.guest ? " (guest)" : "");
}

// The emoji offered by a message's "React" button; any emoji can come in from other clients.
export const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

// A button that a click handler tells by its `data-action`; `label` names it
// for screen readers, `hover` on hover (its text may be only a symbol).
export function actionButton(action, text, label, hover) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.action = action;
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  if (hover) b.title = hover;
  return b;
}

// A person's initials on a colour of their own: the same name, the same colour, everywhere.
function avatar(author) {
  const span = document.createElement("span");
  span.className = "avatar";
  span.setAttribute("aria-hidden", "true");
  const parts = author.name.split(/[\s._-]+/).filter(Boolean);
  span.textContent = (parts.length > 1 ? parts[0][0] + parts[1][0] : author.name.slice(0, 2)).toUpperCase();
  let hash = 2166136261; // FNV-1a: near names get far colours
  for (const char of author.name + (author.guest ? "~" : "")) hash = Math.imul(hash ^ char.codePointAt(0), 16777619) >>> 0;
  span.style.backgroundColor = `hsl(${hash % 360} 55% 38%)`;
  return span;
}

// "Today", "Yesterday", or the date, for a day separator.
function dayLabel(time, now = Date.now()) {
  const start = (t) => new Date(t).setHours(0, 0, 0, 0);
  const days = Math.round((start(now) - start(time)) / DAY_MS);
  return days === 0 ? "Today" : days === 1 ? "Yesterday" : dayFormat.format(new Date(time));
}

// Guests may reply only: reacting, editing and deleting need an account.
function signupHint() {
  const a = document.createElement("a");
  a.className = "signup-hint";
  a.href = "/accounts/signup/";
  a.textContent = "Sign up to react or edit";
  return a;
}

// One message as a list item: a quote of the message it replies to, its
// body, attachment, preview and reactions, and buttons to reply, react
// (`canReact`), edit (`mine`) and delete (`mine`, or `canDelete`: a moderator);
// for a guest (`guest`), where those would be, a link to sign up for them.
export function messageItem(
  message,
  { pending = false, mine = false, mentioned = false, canReact = false, canDelete = false, guest = false } = {},
) {
  const li = document.createElement("li");
  li.className = "message";
  if (message.seq) li.dataset.seq = message.seq;
  li.dataset.clientId = message.client_id;
  li.author = message.author;
  li.dataset.author = authorLabel(message.author);
  li.dataset.time = message.created ? Date.parse(message.created) : Date.now();
  li.classList.toggle("pending", pending);
  li.classList.toggle("mentioned", mentioned);

  const head = document.createElement("div");
  head.className = "head";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = authorLabel(message.author);
  const time = document.createElement("time");
  time.className = "meta";
  time.textContent = message.created ? timeFormat.format(new Date(message.created)) : "sending…";
  if (message.created) {
    time.dateTime = message.created;
    time.title = fullFormat.format(new Date(message.created));
  }
  head.append(avatar(message.author), author, time);

  const body = document.createElement("div");
  body.className = "body";
  body.dir = "auto"; // Arabic or Hebrew reads from the right
  li.append(head);
  if (message.quote) li.append(quoteBlock(message.quote));
  const reactions = document.createElement("div");
  reactions.className = "reactions";
  li.append(body, reactions);
  if (message.attachment) body.after(attachmentLink(message.attachment));
  setBody(li, message);
  setPreview(li, message.preview);
  if (!pending && !message.deleted) {
    const actions = document.createElement("span");
    actions.className = "actions";
    const seq = message.seq;
    actions.append(actionButton("reply", "↩", `Reply to message ${seq}`, "Reply"));
    if (canReact) actions.append(actionButton("react", "☺", `React to message ${seq}`, "React"));
    if (mine) actions.append(actionButton("edit", "✎", `Edit message ${seq}`, "Edit"));
    if (mine || canDelete) actions.append(actionButton("delete", "✕", `Delete message ${seq}`, "Delete"));
    if (guest) actions.append(signupHint());
    li.append(actions);
  }
  return li;
}

const DONE = { kick: "kicked", ban: "banned", unban: "unbanned", mute: "muted", unmute: "unmuted", promote: "made a moderator:", demote: "made a member:" };

// A moderation action, as a line among the messages (it has no seq).
export function noticeItem({ action, user, by, until, reason }) {
  const li = document.createElement("li");
  li.className = "notice";
  const when = until ? ` until ${new Date(until).toLocaleString()}` : "";
  li.textContent = `${by} ${DONE[action]} ${user}${when}${reason ? `: ${reason}` : ""}`;
  return li;
}

// An attachment: an image as a thumbnail that opens the full picture, any
// other file as a link to download it.
function attachmentLink({ url, name, size, image, width, height, thumbnail_url: thumbnail }) {
  const link = document.createElement("a");
  link.className = "attachment";
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener";
  if (image) {
    const img = document.createElement("img");
    img.className = "thumb";
    img.src = thumbnail ?? url;
    // The thumbnail's box, so the list does not jump when it loads.
    const scale = Math.min(1, 240 / width, 180 / height);
    if (width && height) [img.width, img.height] = [Math.round(width * scale), Math.round(height * scale)];
    img.alt = name;
    img.loading = "lazy";
    link.append(img);
  } else {
    link.download = name;
    link.textContent = `📄 ${name} (${Math.ceil(size / 1024)} KiB)`;
  }
  return link;
}

// The link preview of a message's first URL: its title (a link) and
// description, as text. The page's image is not loaded: that would tell its
// site who reads the room.
export function setPreview(li, preview) {
  li.querySelector(".preview")?.remove();
  if (!preview || li.classList.contains("deleted")) return;
  const card = document.createElement("div");
  card.className = "preview";
  const title = document.createElement("a");
  title.href = preview.url;
  title.rel = "noopener noreferrer";
  title.target = "_blank";
  title.textContent = preview.title || preview.url;
  const description = document.createElement("p");
  description.textContent = preview.description;
  card.append(title, description);
  li.querySelector(".reactions").before(card);
}

// The start of the message a reply answers; clicking it shows that message.
export function quoteBlock(quote) {
  const block = document.createElement("button");
  block.type = "button";
  block.className = "quote";
  block.dataset.quote = quote.seq;
  const who = document.createElement("span");
  who.className = "author";
  who.textContent = authorLabel(quote.author);
  const text = document.createElement("bdi"); // a right-to-left quote stays in its place
  text.textContent = quote.deleted ? "Message deleted" : quote.body;
  block.append(who, " ", text);
  return block;
}

// Show a message's reactions, unless those of a later stream entry are shown
// already (`seq`: the entry they came with). Chips you are in are pressed.
export function setReactions(li, reactions, { seq, me, canReact }) {
  if ((li.reactionSeq ?? 0) > seq) return;
  li.reactionSeq = seq;
  const row = li.querySelector(".reactions");
  row.replaceChildren(
    ...reactions.map(({ emoji, count, users }) => {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "reaction";
      chip.dataset.emoji = emoji;
      chip.disabled = !canReact;
      chip.setAttribute("aria-pressed", String(users.includes(me)));
      chip.title = users.join(", ") + (count > users.length ? ` and ${count - users.length} more` : "");
      chip.textContent = `${emoji} ${count}`;
      return chip;
    }),
  );
}

// Show a message's current text, or that it was edited or deleted.
export function setBody(li, { body, deleted, edited }) {
  li.bodyText = deleted ? "" : body;
  const target = li.querySelector(".body");
  target.replaceChildren(deleted ? "Message deleted" : linkify(body));
  li.classList.toggle("deleted", Boolean(deleted));
  showMore(li, !deleted && (body.length > LONG_CHARS || body.split("\n").length > LONG_LINES));
  if (deleted) {
    li.querySelector(".actions")?.remove();
    li.querySelector(".preview")?.remove();
    li.querySelector(".attachment")?.remove();
    li.querySelector(".reactions").replaceChildren();
  }
  li.querySelector(".edited")?.remove();
  if (edited && !deleted) {
    const mark = document.createElement("span");
    mark.className = "edited";
    mark.textContent = " (edited)";
    target.append(mark);
  }
}

// A long message is cut, with a button to show the rest (and to cut it again).
function showMore(li, long) {
  li.classList.toggle("long", long);
  li.querySelector(".more")?.remove();
  if (!long) return;
  const more = document.createElement("button");
  more.type = "button";
  more.className = "more link";
  more.textContent = li.classList.contains("expanded") ? "Show less" : "Show more";
  more.addEventListener("click", () => {
    more.textContent = li.classList.toggle("expanded") ? "Show less" : "Show more";
  });
  li.querySelector(".body").after(more);
}

// Insert in seq order (pending items stay last), replacing the pending copy,
// and before the separators that head the message it goes before.
export function placeMessage(list, li) {
  list.querySelector(`li.pending[data-client-id="${CSS.escape(li.dataset.clientId)}"]`)?.remove();
  const seq = Number(li.dataset.seq);
  let later = [...list.children].find(
    (other) => other.classList.contains("pending") || Number(other.dataset.seq) > seq,
  );
  while (later?.previousElementSibling && !later.previousElementSibling.dataset.time) later = later.previousElementSibling;
  list.insertBefore(li, later ?? null);
  settle(li);
}

// A message sent but not acknowledged yet: last, shown faded.
export function appendPending(list, li) {
  list.append(li);
  settle(li);
}

// A placed message, and the one after it: each day's first gets its separator, and
// a message right after another by the same author, within 5 minutes, hides its header.
function settle(li) {
  let next = li.nextElementSibling;
  while (next && !next.dataset.time) next = next.nextElementSibling;
  for (const message of next ? [li, next] : [li]) {
    separate(message);
    regroup(message);
  }
}

// The items between a message and the one before it (separators, notices), and that one.
function before(li) {
  const between = [];
  let previous = li.previousElementSibling;
  while (previous && !previous.dataset.time) {
    between.push(previous);
    previous = previous.previousElementSibling;
  }
  return { between, previous };
}

function separate(li) {
  const { between, previous } = before(li);
  const day = new Date(Number(li.dataset.time)).toDateString();
  const separator = between.find((item) => item.classList.contains("day"));
  if (previous && new Date(Number(previous.dataset.time)).toDateString() === day) return separator?.remove();
  if (separator?.dataset.day === day) return;
  separator?.remove();
  const item = document.createElement("li");
  item.className = "day";
  item.setAttribute("role", "separator");
  item.dataset.day = day;
  item.textContent = dayLabel(Number(li.dataset.time));
  (between.at(-1) ?? li).before(item); // above any other line ("New messages") in between
}

function regroup(li) {
  const previous = li.previousElementSibling;
  const continued =
    previous &&
    previous.dataset.author === li.dataset.author &&
    Number(li.dataset.time) - Number(previous.dataset.time) < GROUP_MS;
  li.classList.toggle("continued", Boolean(continued));
}
