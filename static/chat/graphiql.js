// GraphiQL on /graphql/: posts queries here with the session's CSRF token.
const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.slice(10) ?? "";

async function fetcher(params) {
  const response = await fetch(location.pathname, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify(params),
  });
  return response.json();
}

const example = `# Rooms you may read, with what is unread
query {
  rooms { slug title unread mentions }
}
`;

const root = document.getElementById("graphiql");
ReactDOM.createRoot(root).render(
  React.createElement(GraphiQL, { fetcher, defaultQuery: example, defaultEditorToolbarTabs: "variables" }),
);
