// Rendering. User text is only ever set with textContent or as text nodes:
// never parsed as HTML. Links become anchors for http(s) URLs only.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
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

function button(action, text, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.action = action;
  b.textContent = text;
  b.setAttribute("aria-label", label);
  return b;
}

// One message as a list item: a quote of the message it replies to, its
// body, attachment, preview and reactions, and buttons to reply, react
// (`canReact`), edit (`mine`) and delete (`mine`, or `canDelete`: a moderator).
export function messageItem(
  message,
  { pending = false, mine = false, mentioned = false, canReact = false, canDelete = false } = {},
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
  head.append(author, time);

  const body = document.createElement("div");
  body.className = "body";
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
    actions.append(button("reply", "Reply", `Reply to message ${seq}`));
    if (canReact) actions.append(button("react", "React", `React to message ${seq}`));
    if (mine) actions.append(button("edit", "Edit", `Edit message ${seq}`));
    if (mine || canDelete) actions.append(button("delete", "Delete", `Delete message ${seq}`));
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
  block.append(who, " ", quote.deleted ? "Message deleted" : quote.body);
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

// Insert in seq order (pending items stay last), replacing the pending copy.
export function placeMessage(list, li) {
  list.querySelector(`li.pending[data-client-id="${CSS.escape(li.dataset.clientId)}"]`)?.remove();
  const seq = Number(li.dataset.seq);
  const later = [...list.children].find(
    (other) => other.classList.contains("pending") || Number(other.dataset.seq) > seq,
  );
  list.insertBefore(li, later ?? null);
  regroup(li);
  if (li.nextElementSibling) regroup(li.nextElementSibling);
}

// A message right after another by the same author, within 5 minutes, hides its header.
function regroup(li) {
  const previous = li.previousElementSibling;
  const continued =
    previous &&
    previous.dataset.author === li.dataset.author &&
    Number(li.dataset.time) - Number(previous.dataset.time) < GROUP_MS;
  li.classList.toggle("continued", Boolean(continued));
}
