// Going somewhere: the address names the open room, or a message in it
// (`#room/seq`, as the links in emails do), and main.js opens what it names.
// So the address always follows the open room, and a reload comes back to it.
export function go(slug, seq = null) {
  const hash = `#${seq ? `${slug}/${seq}` : slug}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
