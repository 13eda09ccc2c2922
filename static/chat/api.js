// The page's own HTTP calls to /api/v1/, and how any error reads to a person.

// The session cookie needs Django's CSRF token on every write.
const csrfToken = () => document.querySelector("input[name=csrfmiddlewaretoken]").value;

// An error (a socket's `error` frame or the API's reply) as one line of text.
export const errorText = ({ code, detail }) => `${code.replaceAll("_", " ")}: ${detail}`;

// Call the API with a JSON body (`json`) or a form (`form`); resolves to
// {ok, reply}, the reply being the parsed JSON answer.
export async function apiCall(path, { method = "GET", json, form } = {}) {
  const headers = { "X-CSRFToken": csrfToken() };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: json !== undefined ? JSON.stringify(json) : form,
  });
  return { ok: response.ok, reply: response.status === 204 ? null : await response.json() };
}
