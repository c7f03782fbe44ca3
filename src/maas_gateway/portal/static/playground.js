// The playground: streams /v1/chat/completions with a short-lived key from /portal/playground/key.
// Text is always inserted with textContent, never as markup.
(() => {
  const form = document.getElementById("playground");
  if (!form) return;
  form.hidden = false; // shown only where this script runs: without it there is nothing to send to
  const log = document.getElementById("chat-log");
  const status = document.getElementById("playground-status");
  const send = document.getElementById("playground-send");
  const prompt = form.elements.prompt;
  const keys = new Map(); // model -> {key, expiresAt}
  let history = [];

  const say = (role, text) => {
    const item = document.createElement("li");
    item.className = `from-${role}`;
    item.textContent = text;
    log.appendChild(item);
    return item;
  };

  const keyFor = async (model) => {
    const known = keys.get(model);
    if (known && known.expiresAt * 1000 - Date.now() > 30000) return known.key;
    // A signed-out session answers with a redirect to the sign-in page, refused here as an error.
    const response = await fetch("/portal/playground/key", {
      method: "POST",
      headers: { "X-CSRF-Token": form.elements.csrf_token.value },
      body: new URLSearchParams({ model }),
      credentials: "same-origin",
      redirect: "error",
    }).catch(() => null);
    const ended = { error: { message: "Your portal session has ended; reload the page and sign in again." } };
    if (!response) throw new Error(ended.error.message);
    const data = await response.json().catch(() => ended);
    if (!response.ok) throw new Error(data.error.message);
    keys.set(model, { key: data.key, expiresAt: data.expires_at });
    return data.key;
  };

  const stream = async (model, answer) => {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { Authorization: `Bearer ${await keyFor(model)}`, "Content-Type": "application/json" },
      body: JSON.stringify({ model, messages: history, stream: true }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error((data.error && data.error.message) || `The gateway answered ${response.status}.`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) {
        if (!line.startsWith("data:")) continue;
        const payload = line.slice(5).trim();
        if (payload === "[DONE]") continue;
        const event = JSON.parse(payload);
        if (event.error) throw new Error(event.error.message);
        const delta = event.choices && event.choices[0] && event.choices[0].delta;
        if (delta && delta.content) {
          text += delta.content;
          answer.textContent = text;
        }
      }
    }
    return text;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = prompt.value.trim();
    if (!content) return;
    const model = form.elements.model.value;
    history.push({ role: "user", content });
    say("user", content);
    prompt.value = "";
    const answer = say("assistant", "…");
    send.disabled = true;
    status.textContent = "Answering…";
    try {
      const text = await stream(model, answer);
      history.push({ role: "assistant", content: text });
      answer.dataset.done = "true";
      status.textContent = "";
    } catch (error) {
      answer.remove();
      history.pop();
      say("error", error.message);
      status.textContent = "";
    } finally {
      send.disabled = false;
      prompt.focus();
    }
  });

  document.getElementById("playground-clear").addEventListener("click", () => {
    history = [];
    log.replaceChildren();
    prompt.focus();
  });
})();
