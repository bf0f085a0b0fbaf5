// The bridge console: a page on the public API only, with the user token its visitor brings (the `#token=`
// fragment, which never reaches a server or a log, or the form). History over HTTP, live events over the WebSocket's
// `?access_token=` path, media through the bridge's media route. No build step: this file is served as it is.

const $ = (id) => document.getElementById(id);
const state = {
  token: "",
  user: "",
  conversation: "",
  /** message_id -> the latest wire event content and sender, in arrival order. */
  messages: new Map(),
  cursor: undefined,
  socket: undefined,
  retry: 500,
};

async function api(path, options = {}) {
  const headers = { authorization: `Bearer ${state.token}`, ...options.headers };
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method: options.method ?? "GET",
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : options.body,
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return body;
}

const show = (error) => {
  $("error").textContent = error ? String(error.message ?? error) : "";
};

/** The user a token names (its payload is readable; the server checks the signature). */
function userOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).sub ?? "";
  } catch {
    return "";
  }
}

async function pollReadiness() {
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    $("status").dataset.state = body.status;
    $("status").textContent = `readiness: ${body.status}`;
    const lag = body.sync_lag_seconds;
    $("lag").textContent = `sync lag: ${typeof lag === "number" ? `${lag.toFixed(1)} s` : "n/a"}`;
  } catch {
    $("status").dataset.state = "not_ready";
    $("status").textContent = "readiness: unreachable";
  }
}

async function signIn(token) {
  state.token = token.trim();
  state.user = userOf(state.token);
  $("whoami").textContent = state.user ? `signed in as ${state.user}` : "";
  show();
  try {
    await loadConversations();
    connect();
  } catch (error) {
    show(error);
  }
}

async function loadConversations() {
  const { conversations } = await api("/v1/conversations");
  const list = $("conversations");
  list.replaceChildren(
    ...conversations.map((conversation) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.textContent = `${conversation.conversation_id} (${conversation.kind})`;
      button.dataset.conversationId = conversation.conversation_id;
      button.addEventListener("click", () => select(conversation.conversation_id));
      item.append(button);
      return item;
    }),
  );
  markCurrent();
}

function markCurrent() {
  for (const button of $("conversations").querySelectorAll("button"))
    button.setAttribute("aria-current", String(button.dataset.conversationId === state.conversation));
}

async function select(conversationId) {
  state.conversation = conversationId;
  state.messages = new Map();
  $("title").textContent = conversationId;
  for (const id of ["text", "file", "send"]) $(id).disabled = false;
  markCurrent();
  show();
  try {
    const path = `/v1/conversations/${encodeURIComponent(conversationId)}/messages?limit=50`;
    const { events } = await api(path);
    // Newest first: applied oldest first, like live events.
    for (const event of [...events].reverse()) apply(event);
    render();
  } catch (error) {
    show(error);
  }
}

/** One event into the state: new messages, edits in place, deletions removed. */
function apply(event) {
  if (event.conversation_id !== state.conversation) return;
  if (event.type === "message.new") {
    if (!state.messages.has(event.message_id))
      state.messages.set(event.message_id, {
        // A Matrix user who is not a Nova user has no sender_id: shown by their Matrix id.
        sender: event.sender_id ?? event.matrix_sender_id,
        content: event.content,
        edited: false,
      });
  } else if (event.type === "message.edited") {
    const message = state.messages.get(event.message_id);
    if (message) Object.assign(message, { content: event.content, edited: true });
  } else if (event.type === "message.deleted") {
    state.messages.delete(event.message_id);
  }
}

function connect() {
  state.socket?.close();
  const url = new URL("/v1/events", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("access_token", state.token);
  if (state.cursor) url.searchParams.set("since", state.cursor);
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.addEventListener("open", () => {
    state.retry = 500;
    $("stream").dataset.state = "open";
    $("stream").textContent = "events: live";
  });
  socket.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.cursor) state.cursor = event.cursor;
    apply(event);
    if (event.conversation_id === state.conversation) render();
    else if (event.type === "message.new") void loadConversations().catch(show);
  });
  socket.addEventListener("close", (closed) => {
    if (state.socket !== socket) return;
    $("stream").dataset.state = "closed";
    $("stream").textContent = `events: closed (${closed.code}${closed.reason ? ` ${closed.reason}` : ""})`;
    // Resumes after the last cursor it saw: nothing is missed across the reconnect.
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 15_000);
  });
}

/** The bridge's media URL with the token a browser element cannot send as a header. */
const mediaSrc = (path) => `${path}?access_token=${encodeURIComponent(state.token)}`;

function attachment(content) {
  switch (content.kind) {
    case "image": {
      const image = document.createElement("img");
      image.src = mediaSrc(content.thumbnail_url ?? content.media_url);
      image.alt = content.body;
      return image;
    }
    case "audio":
    case "video": {
      const player = document.createElement(content.kind);
      player.controls = true;
      player.preload = "metadata";
      player.src = mediaSrc(content.media_url);
      return player;
    }
    default: {
      const link = document.createElement("a");
      link.href = mediaSrc(content.media_url);
      link.download = content.body;
      link.textContent = `${content.body} (${content.mimetype ?? "file"}, ${content.size ?? "?"} bytes)`;
      return link;
    }
  }
}

function render() {
  const list = $("messages");
  list.replaceChildren(
    ...[...state.messages].map(([messageId, message]) => {
      const item = document.createElement("li");
      item.dataset.messageId = messageId;
      const mine = message.sender === state.user;
      if (mine) item.classList.add("mine");
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = message.sender;
      const body = document.createElement("span");
      body.className = "body";
      body.textContent = message.content.body;
      item.append(meta, body);
      if (message.edited) {
        const edited = document.createElement("span");
        edited.className = "edited";
        edited.textContent = "(edited)";
        item.append(edited);
      }
      if (message.content.kind !== "text") item.append(attachment(message.content));
      if (mine) item.prepend(actions(messageId, message));
      return item;
    }),
  );
  list.scrollTop = list.scrollHeight;
}

function actions(messageId, message) {
  const box = document.createElement("span");
  box.className = "actions";
  const path = `/v1/conversations/${encodeURIComponent(state.conversation)}/messages/${encodeURIComponent(messageId)}`;
  if (message.content.kind === "text") {
    const edit = document.createElement("button");
    edit.textContent = "Edit";
    edit.addEventListener("click", async () => {
      const text = prompt("New text", message.content.body);
      if (text) await api(path, { method: "PATCH", json: { text } }).catch(show);
    });
    box.append(edit);
  }
  const remove = document.createElement("button");
  remove.textContent = "Delete";
  remove.addEventListener("click", () => api(path, { method: "DELETE" }).catch(show));
  box.append(remove);
  return box;
}

async function send(event) {
  event.preventDefault();
  show();
  const base = `/v1/conversations/${encodeURIComponent(state.conversation)}`;
  const key = crypto.randomUUID();
  try {
    const file = $("file").files[0];
    if (file) {
      const query = new URLSearchParams({ client_message_id: key, filename: file.name });
      await api(`${base}/media?${query}`, {
        method: "POST",
        body: file,
        headers: { "content-type": file.type || "application/octet-stream" },
      });
      $("file").value = "";
    }
    const text = $("text").value.trim();
    if (text) {
      await api(`${base}/messages`, { method: "POST", json: { text, client_message_id: `${key}.text` } });
      $("text").value = "";
    }
  } catch (error) {
    show(error);
  }
}

async function create(event) {
  event.preventDefault();
  show();
  const others = $("new-members")
    .value.split(",")
    .map((member) => member.trim())
    .filter(Boolean);
  try {
    const { conversation_id } = await api("/v1/conversations", {
      method: "POST",
      json: {
        conversation_id: $("new-id").value.trim(),
        kind: $("new-kind").value,
        members: [state.user, ...others],
      },
    });
    await loadConversations();
    await select(conversation_id);
  } catch (error) {
    show(error);
  }
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  void signIn($("token").value);
});
$("compose").addEventListener("submit", send);
$("create").addEventListener("submit", create);
void pollReadiness();
setInterval(pollReadiness, 5000);

// `#token=<user token>`: taken once, then removed from the address bar and history.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  history.replaceState(null, "", location.pathname);
  $("token").value = fragment.get("token");
  void signIn(fragment.get("token"));
}
