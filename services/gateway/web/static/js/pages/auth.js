// Signing in and everything around it: register, verify, forgot user ID/password, unlock, external.

import { get, post, setCsrfToken, ApiError } from "../api.js";
import { h, field, onSubmit, submitButton, alertBox, notice, requireFields, clear } from "../ui.js";
import { billFigure, pageHeader } from "../components.js";

const PATHS = {
  sessions: "/sessions",
  providers: "/external-providers",
  externalStart: "/external-sign-ins",
  externalComplete: "/external-sign-ins/complete",
  challenge: "/registrations/challenge",
  registrations: "/registrations",
  verifications: "/email-verifications",
  resend: "/email-verifications/resend",
  reminders: "/user-id-reminders",
  resets: "/password-resets",
  resetComplete: "/password-resets/confirm",
  unlockRequests: "/unlock-requests",
  unlocks: "/unlocks",
};

function safeNext(query) {
  const next = query.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

async function afterSignIn(app, session, next) {
  if (session && session.csrf_token) setCsrfToken(session.csrf_token);
  await app.refreshMe();
  await app.refreshCart();
  app.navigate(next, { replace: true });
}

async function externalButtons() {
  let providers = [];
  try {
    const data = await get(PATHS.providers);
    providers = Array.isArray(data) ? data : data.providers || [];
  } catch {
    providers = [];
  }
  if (!providers.length) return null;
  return h(
    "section",
    { class: "external", "aria-labelledby": "external-h" },
    h("h2", { id: "external-h" }, "Or sign in with"),
    h(
      "ul",
      { class: "provider-list" },
      providers.map((p) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "btn btn-provider",
              on: {
                click: async (event) => {
                  event.target.disabled = true;
                  try {
                    sessionStorage.setItem("muniportal.oidc", p.provider);
                    const data = await post(PATHS.externalStart, { provider: p.provider });
                    location.assign(data.authorization_url);
                  } catch (err) {
                    event.target.disabled = false;
                    notice(err.message, "error");
                  }
                },
              },
            },
            `Sign in with ${p.name}`,
          ),
        ),
      ),
    ),
    h(
      "p",
      { class: "hint" },
      "If you use Google, Apple, Microsoft or Facebook, always sign in that way: your password is then managed by that service.",
    ),
  );
}

async function signInPage({ query, app }) {
  if (app.me) {
    app.navigate(safeNext(query), { replace: true });
    return undefined;
  }
  const next = safeNext(query);
  const extra = h("div", { class: "form-extra" });
  const form = h(
    "form",
    { class: "stack" },
    field({ name: "login", label: "User ID or email address", autocomplete: "username", required: true }),
    field({ name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true }),
    field({ name: "remember_me", label: "Keep me signed in on this device for 30 days", type: "checkbox" }),
    submitButton("Sign in"),
  );
  onSubmit(
    form,
    async (values) => {
      clear(extra);
      try {
        const session = await post(PATHS.sessions, values);
        await afterSignIn(app, session, next);
      } catch (err) {
        if (err instanceof ApiError && /not.verified|email_not_verified/.test(`${err.code} ${err.detail}`)) {
          extra.append(resendBox(values.login.includes("@") ? values.login : ""));
        }
        if (err instanceof ApiError && /locked/.test(`${err.code} ${err.detail}`)) {
          extra.append(alertBox("Your account is locked after too many failed attempts.", "info", h("p", {}, h("a", { href: "/unlock" }, "Send me an unlock link"), " or ", h("a", { href: "/forgot-password" }, "reset your password"), ".")));
        }
        throw err;
      }
    },
    (v) => requireFields(v, { login: "user ID or email address", password: "password" }),
    { service: "Signing in" },
  );
  const messages = [];
  if (query.get("signed_out")) messages.push(alertBox("You have signed out.", "success"));
  if (query.get("verified")) messages.push(alertBox("Your email address is verified. You can sign in now.", "success"));
  if (query.get("reset")) messages.push(alertBox("Your password was changed. Sign in with the new one.", "success"));
  if (query.get("next")) messages.push(alertBox("Please sign in to continue.", "info"));
  return [
    h(
      "div",
      { class: "auth-layout" },
      h(
        "div",
        { class: "card auth-card" },
        pageHeader("Sign in"),
        messages,
        form,
        extra,
        h(
          "ul",
          { class: "link-list" },
          h("li", {}, h("a", { href: "/forgot-password" }, "Forgot your password?")),
          h("li", {}, h("a", { href: "/forgot-user-id" }, "Forgot your user ID?")),
          h("li", {}, h("a", { href: "/unlock" }, "Unlock your account")),
        ),
        await externalButtons(),
      ),
      h(
        "aside",
        { class: "card auth-aside", "aria-labelledby": "new-h" },
        h("h2", { id: "new-h" }, "New here?"),
        h("p", {}, "Register to see your bills and usage, go paperless and pay online any time."),
        h("p", {}, h("a", { class: "btn btn-secondary", href: "/register" }, "Register")),
        h("h2", {}, "Just want to pay?"),
        h("p", {}, "Pay a utility bill with your account and customer numbers, no registration needed."),
        h("p", {}, h("a", { class: "btn btn-secondary", href: "/quick-pay" }, "Quick pay")),
      ),
    ),
  ];
}

function resendBox(email) {
  const form = h(
    "form",
    { class: "stack compact" },
    h("p", {}, "Didn’t get the verification email? We can send it again."),
    field({ name: "email", label: "Email address", type: "email", autocomplete: "email", value: email, required: true }),
    submitButton("Send the link again"),
  );
  onSubmit(
    form,
    async (values) => {
      await post(PATHS.resend, values);
      form.replaceWith(alertBox(`If ${values.email} belongs to an unverified registration, a new link is on its way.`, "success"));
    },
    (v) => requireFields(v, { email: "email address" }),
  );
  return h("div", { class: "notice notice-info" }, form);
}

// The server asks for the challenge by naming `challenge_answer` in a 422; each answer spends it.
async function challengeFields() {
  const c = await get(PATHS.challenge);
  if (!c || !c.question) return null;
  return h(
    "fieldset",
    { class: "challenge", "data-challenge": "" },
    h("legend", {}, "Prove you are a person"),
    h("input", { type: "hidden", name: "challenge_id", value: c.challenge_id }),
    field({ name: "challenge_answer", label: c.question, hint: c.audio_text ? `Or: ${c.audio_text}` : null, required: true, autocomplete: "off" }),
  );
}

async function registerPage({ app }) {
  if (app.me) {
    app.navigate("/", { replace: true });
    return undefined;
  }
  const challengeSlot = h("div", { class: "challenge-slot" });
  const form = h(
    "form",
    { class: "stack" },
    h(
      "fieldset",
      {},
      h("legend", {}, "Your sign-in"),
      field({ name: "user_id", label: "User ID", hint: "1 to 20 letters, digits, dots, dashes or underscores.", autocomplete: "username", required: true, maxlength: 20 }),
      field({ name: "email", label: "Email address", type: "email", autocomplete: "email", required: true, hint: "We send a link to this address to verify it." }),
      field({ name: "email_confirm", label: "Confirm email address", type: "email", autocomplete: "email", required: true }),
      field({ name: "password", label: "Password", type: "password", autocomplete: "new-password", required: true, hint: "At least 8 characters. A phrase of several words is easy to remember and hard to guess." }),
      field({ name: "password_confirm", label: "Re-type password", type: "password", autocomplete: "new-password", required: true }),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Your utility account (optional)"),
      h("p", { class: "hint" }, "Enter both numbers from your bill to link your account now. You can also do this later."),
      h(
        "div",
        { class: "with-figure" },
        h(
          "div",
          {},
          field({ name: "account_number", label: "Account number", inputmode: "numeric", autocomplete: "off", hint: "The first number in “Account Number - Customer Number”." }),
          field({ name: "customer_id", label: "Customer number", inputmode: "numeric", autocomplete: "off", hint: "The second number, also called customer ID." }),
        ),
        billFigure(),
      ),
    ),
    challengeSlot,
    submitButton("Register"),
  );
  const result = h("div");
  onSubmit(
    form,
    async (values) => {
      const body = { user_id: values.user_id, email: values.email, password: values.password };
      if (values.account_number) body.account_number = values.account_number;
      if (values.customer_id) body.customer_id = values.customer_id;
      if (values.challenge_id) {
        body.challenge_id = values.challenge_id;
        body.challenge_answer = values.challenge_answer;
      }
      let data;
      try {
        data = await post(PATHS.registrations, body);
      } catch (err) {
        if (err instanceof ApiError && err.errors.challenge_answer) {
          const fresh = await challengeFields().catch(() => null);
          if (fresh) challengeSlot.replaceChildren(fresh);
          if (!values.challenge_id) err.errors.challenge_answer = "Please answer this question, then choose Register again.";
        }
        throw err;
      }
      const email = (data && data.email) || values.email;
      clear(
        result,
        h("h1", { tabindex: "-1", id: "registered" }, "Check your email"),
        alertBox(`You have registered. We sent a link to ${email}: open it to verify your address, then sign in.`, "success"),
        h("p", {}, "The link works for 24 hours. ", h("a", { href: "/sign-in" }, "Go to sign in"), "."),
      );
      form.parentElement.replaceWith(result);
      document.title = "Check your email · Citizen Self Service";
      document.getElementById("registered").focus();
    },
    (v) => {
      const errors = requireFields(v, { user_id: "user ID", email: "email address", password: "password" });
      if (v.email && v.email_confirm !== v.email) errors.email_confirm = "The two email addresses do not match.";
      if (v.password && v.password_confirm !== v.password) errors.password_confirm = "The two passwords do not match.";
      if (Boolean(v.account_number) !== Boolean(v.customer_id)) {
        errors[v.account_number ? "customer_id" : "account_number"] = "Enter both the account number and the customer number, or neither.";
      }
      return errors;
    },    { pair: ["account_number", "customer_id"] },
  );
  return h("div", { class: "card narrow-wide" }, pageHeader("Register", "Create your user ID for the city’s self-service portal."), form, h("p", {}, "Already registered? ", h("a", { href: "/sign-in" }, "Sign in"), "."));
}

async function verifyEmailPage({ query }) {
  const token = query.get("token") || "";
  const head = pageHeader("Verify your email address");
  if (!token) return [head, alertBox("This link has no token. Open the link from your email again, or ask for a new one from the sign-in page.")];
  try {
    const data = await post(PATHS.verifications, { token });
    const restored = (data && data.restored) || [];
    return [
      head,
      alertBox("Your email address is verified.", "success"),
      restored.length ? h("p", {}, `We found your earlier registration and linked these accounts again: ${restored.join(", ")}.`) : null,
      data && data.legacy_matches && data.legacy_matches.length
        ? h("p", {}, "We found earlier registrations with this address. Sign in and confirm which are yours in Account settings.")
        : null,
      h("p", {}, h("a", { class: "btn btn-primary", href: "/sign-in?verified=1" }, "Sign in")),
    ];
  } catch (err) {
    const conflict = err instanceof ApiError && err.status === 409;
    return [
      head,
      alertBox(err.message || "This link could not be used."),
      conflict ? null : h("p", {}, "Links work once, for 24 hours. ", h("a", { href: "/sign-in" }, "Sign in"), " to have a new one sent."),
    ];
  }
}

function emailRequestPage({ title, lead, path, done, button }) {
  return async () => {
    const form = h(
      "form",
      { class: "stack" },
      field({ name: "email", label: "Email address", type: "email", autocomplete: "email", required: true }),
      submitButton(button),
    );
    const wrap = h("div", { class: "card narrow" }, pageHeader(title, lead), form, h("p", {}, h("a", { href: "/sign-in" }, "Back to sign in")));
    onSubmit(
      form,
      async (values) => {
        await post(path, values);
        const msg = alertBox(done(values.email), "success");
        form.replaceWith(msg);
        notice(done(values.email), "success");
      },
      (v) => requireFields(v, { email: "email address" }),
    );
    return wrap;
  };
}

async function resetPasswordPage({ query, app }) {
  const token = query.get("token") || "";
  if (!token) return [pageHeader("Choose a new password"), alertBox("This link has no token. Ask for a new link."), h("p", {}, h("a", { href: "/forgot-password" }, "Forgot password"))];
  const form = h(
    "form",
    { class: "stack" },
    field({ name: "new_password", label: "New password", type: "password", autocomplete: "new-password", required: true, hint: "At least 8 characters." }),
    field({ name: "password_confirm", label: "Re-type new password", type: "password", autocomplete: "new-password", required: true }),
    submitButton("Change password"),
  );
  onSubmit(
    form,
    async (values) => {
      await post(PATHS.resetComplete, { token, new_password: values.new_password });
      app.navigate("/sign-in?reset=1", { replace: true });
    },
    (v) => {
      const e = requireFields(v, { new_password: "new password" });
      if (v.new_password && v.password_confirm !== v.new_password) e.password_confirm = "The two passwords do not match.";
      return e;
    },
  );
  return h("div", { class: "card narrow" }, pageHeader("Choose a new password", "Every device signed in to your account will be signed out."), form);
}

async function unlockPage({ query }) {
  const token = query.get("token");
  if (token) {
    const head = pageHeader("Unlock your account");
    try {
      await post(PATHS.unlocks, { token });
      return [head, alertBox("Your account is unlocked. You can sign in again.", "success"), h("p", {}, h("a", { class: "btn btn-primary", href: "/sign-in" }, "Sign in"))];
    } catch (err) {
      return [head, alertBox(err.message || "This link could not be used."), h("p", {}, h("a", { href: "/unlock" }, "Ask for a new unlock link"))];
    }
  }
  return emailRequestPage({
    title: "Unlock your account",
    lead: "After 10 failed sign-ins your account is locked. We will email you a link that unlocks it.",
    path: PATHS.unlockRequests,
    button: "Send unlock link",
    done: (e) => `If ${e} belongs to a locked account, an unlock link is on its way.`,
  })();
}

async function externalCallbackPage({ params, query, app }) {
  const head = pageHeader("Signing you in");
  if (query.get("error")) return [head, alertBox(`The sign-in was not completed (${query.get("error")}).`), h("p", {}, h("a", { href: "/sign-in" }, "Back to sign in"))];
  try {
    const session = await post(PATHS.externalComplete, { provider: params.provider, code: query.get("code") || "", state: query.get("state") || "" });
    await afterSignIn(app, session, "/");
    return undefined;
  } catch (err) {
    return [head, alertBox(err.message || "The sign-in failed."), h("p", {}, h("a", { href: "/sign-in" }, "Back to sign in"))];
  }
}

async function helpBillPage() {
  return [
    pageHeader("Where to find your numbers", "Your account number and customer number are both printed at the top of your utility bill."),
    h("div", { class: "card" }, billFigure(), h("p", {}, "Enter the account number and the customer number separately, without the dash. Leading zeros do not matter.")),
  ];
}

export const routes = [
  { path: "/sign-in", page: signInPage, title: "Sign in" },
  { path: "/register", page: registerPage, title: "Register" },
  { path: "/verify-email", page: verifyEmailPage, title: "Verify your email address" },
  {
    path: "/forgot-user-id",
    page: emailRequestPage({
      title: "Forgot your user ID?",
      lead: "Enter the email address you registered with. We will email you your user ID.",
      path: PATHS.reminders,
      button: "Email my user ID",
      done: (e) => `If ${e} is registered, we have emailed its user ID. Check your inbox.`,
    }),
  },
  {
    path: "/forgot-password",
    page: emailRequestPage({
      title: "Forgot your password?",
      lead: "Enter the email address you registered with. We will email you a link to choose a new password; it works for one hour.",
      path: PATHS.resets,
      button: "Send reset link",
      done: (e) => `If ${e} is registered, a link to reset your password is on its way.`,
    }),
  },
  { path: "/reset-password", page: resetPasswordPage, title: "Choose a new password" },
  { path: "/unlock", page: unlockPage, title: "Unlock your account" },
  { path: "/sign-in/external/:provider", page: externalCallbackPage, title: "Signing you in" },
  { path: "/help/bill", page: helpBillPage, title: "Where to find your numbers" },
];

