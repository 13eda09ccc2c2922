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

function authorLabel(author) {
  return author.name + (author.guest ? " (guest)" : "");
}

// One message as a list item; `mine` adds edit and delete buttons.
export function messageItem(message, { pending = false, mine = false } = {}) {
  const li = document.createElement("li");
  li.className = "message";
  if (message.seq) li.dataset.seq = message.seq;
  li.dataset.clientId = message.client_id;
  li.dataset.author = authorLabel(message.author);
  li.dataset.time = message.created ? Date.parse(message.created) : Date.now();
  li.classList.toggle("pending", pending);

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
  li.append(head, body);
  setBody(li, message);
  if (mine && !pending) {
    const actions = document.createElement("span");
    actions.className = "actions";
    for (const action of ["edit", "delete"]) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      button.textContent = action === "edit" ? "Edit" : "Delete";
      button.setAttribute("aria-label", `${button.textContent} message ${message.seq}`);
      actions.append(button);
    }
    li.append(actions);
  }
  return li;
}

// Show a message's current text, or that it was edited or deleted.
export function setBody(li, { body, deleted, edited }) {
  li.bodyText = deleted ? "" : body;
  const target = li.querySelector(".body");
  target.replaceChildren(deleted ? "Message deleted" : linkify(body));
  li.classList.toggle("deleted", Boolean(deleted));
  if (deleted) li.querySelector(".actions")?.remove();
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
