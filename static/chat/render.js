// Rendering. User text is only ever set with textContent: never parsed as HTML.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

export function messageItem(message, { pending = false } = {}) {
  const li = document.createElement("li");
  li.dataset.seq = message.seq ?? "";
  li.dataset.clientId = message.client_id;
  li.classList.toggle("pending", pending);
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = message.created ? timeFormat.format(new Date(message.created)) : "sending…";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author.name + (message.author.guest ? " (guest)" : "");
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = message.deleted ? "(deleted)" : message.body;
  li.append(meta, author, body);
  return li;
}

// Insert in seq order; a pending item with the same client_id is replaced.
export function placeMessage(list, message) {
  const item = messageItem(message);
  const pending = list.querySelector(`li[data-client-id="${CSS.escape(message.client_id)}"]`);
  if (pending) pending.remove();
  const later = [...list.children].find((li) => li.dataset.seq && Number(li.dataset.seq) > message.seq);
  list.insertBefore(item, later ?? list.querySelector("li.pending"));
  return item;
}
