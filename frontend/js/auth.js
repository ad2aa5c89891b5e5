// Session tokens (kept in localStorage so a reload stays signed in) and the sign-in / register form.

const KEY = "analysis-server.session";

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "null") || {};
  } catch {
    return {};
  }
}

/** The current session; `store()` takes the token reply of login/register/refresh. */
export const auth = {
  state: load(),
  get accessToken() {
    return this.state.access_token || null;
  },
  get refreshToken() {
    return this.state.refresh_token || null;
  },
  get username() {
    return this.state.username || "";
  },
  store(tokens, extra = {}) {
    this.state = {
      ...this.state,
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token || this.state.refresh_token,
      ...extra,
    };
    localStorage.setItem(KEY, JSON.stringify(this.state));
  },
  clear() {
    this.state = {};
    localStorage.removeItem(KEY);
  },
};

/**
 * Wire the sign-in form. `onSignedIn(username)` runs after a successful login or registration.
 * `api` provides login/register (injected to keep this module free of HTTP details).
 */
export function setupAuthForm({ api, onSignedIn }) {
  const form = document.getElementById("auth-form");
  const tabLogin = document.getElementById("tab-login");
  const tabRegister = document.getElementById("tab-register");
  const submit = document.getElementById("auth-submit");
  const errorBox = document.getElementById("auth-error");
  const username = document.getElementById("auth-username");
  const password = document.getElementById("auth-password");
  let mode = "login";

  const setMode = (next) => {
    mode = next;
    tabLogin.setAttribute("aria-selected", String(mode === "login"));
    tabRegister.setAttribute("aria-selected", String(mode === "register"));
    submit.textContent = mode === "login" ? "Sign in" : "Create account";
    password.autocomplete = mode === "login" ? "current-password" : "new-password";
    document.getElementById("auth-hint").hidden = mode === "login";
    errorBox.hidden = true;
  };
  tabLogin.addEventListener("click", () => setMode("login"));
  tabRegister.addEventListener("click", () => setMode("register"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const name = username.value.trim();
    if (!name || !password.value) {
      showError("Enter a username and a password.");
      return;
    }
    submit.disabled = true;
    try {
      let tokens;
      if (mode === "register") {
        const reply = await api.register(name, password.value);
        tokens = reply && reply.access_token ? reply : await api.login(name, password.value);
      } else {
        tokens = await api.login(name, password.value);
      }
      auth.store(tokens, { username: name });
      password.value = "";
      onSignedIn(name);
    } catch (err) {
      showError(err.status === 401 ? "Wrong username or password." : err.message);
    } finally {
      submit.disabled = false;
    }
  });

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  return {
    show(message = "") {
      document.getElementById("app-view").hidden = true;
      document.getElementById("auth-view").hidden = false;
      if (message) showError(message);
      username.focus();
    },
  };
}
