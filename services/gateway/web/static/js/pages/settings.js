// Account settings: linked accounts (link, remove), password, email address, sessions.

import { get, post, del } from "../api.js";
import { h, card, dl, date, field, onSubmit, submitButton, requireFields, notice, loadError, alertBox, table, clear } from "../ui.js";
import { billFigure, pageHeader } from "../components.js";
import { items } from "./home.js";

const PATHS = {
  links: "/me/links",
  link: (id) => `/me/links/${encodeURIComponent(id)}`,
  password: "/me/password",
  email: "/me/email",
  sessions: "/me/sessions",
  legacyMatches: "/me/legacy-matches",
  legacyClaims: "/me/legacy-claims",
  session: (id) => `/me/sessions/${encodeURIComponent(id)}`,
};

function linksSection(links, rerender) {
  const utility = links.filter((l) => l.type !== "customer");
  const customer = links.filter((l) => l.type === "customer");
  const removeButton = (link, label) =>
    h(
      "button",
      {
        type: "button",
        class: "linklike danger",
        on: {
          click: async (event) => {
            if (!window.confirm(`Remove the link to ${label}? You can link it again later.`)) return;
            event.target.disabled = true;
            try {
              await del(PATHS.link(link.link_id));
              notice(`The link to ${label} was removed.`, "success");
              rerender();
            } catch (err) {
              event.target.disabled = false;
              notice(err.message, "error");
            }
          },
        },
      },
      "Remove",
      h("span", { class: "visually-hidden" }, ` ${label}`),
    );
  const group = (title, rows, type, columns, detailsHref, label) =>
    h(
      "section",
      { class: "link-group", "aria-label": title },
      h("div", { class: "row-between" }, h("h3", {}, title), h("a", { href: `/settings/links/new?type=${type}` }, "Link to account", h("span", { class: "visually-hidden" }, ` (${title})`))),
      rows.length
        ? table({
            caption: title,
            captionHidden: true,
            columns: [
              ...columns,
              {
                label: "Actions",
                cell: (l) => h("span", { class: "actions-inline" }, h("a", { href: detailsHref(l) }, "Details", h("span", { class: "visually-hidden" }, ` ${label(l)}`)), " ", removeButton(l, label(l))),
              },
            ],
            rows,
          })
        : h("p", { class: "empty" }, "There are currently no linked accounts."),
    );
  return [
    h("p", {}, "Linked accounts give you quick access to an account’s details, bills and payments."),
    group(
      "Utility billing accounts",
      utility,
      "utility",
      [
        { label: "Account", key: "account_number" },
        { label: "Customer ID", key: "customer_id" },
        { label: "Service address", cell: (l) => l.service_address || l.location || "" },
      ],
      (l) => `/accounts/${encodeURIComponent(l.account_number)}`,
      (l) => `account ${l.account_number}`,
    ),
    group(
      "Customer accounts (general billing)",
      customer,
      "customer",
      [
        { label: "Name", cell: (l) => l.name || "" },
        { label: "Customer ID", key: "customer_id" },
        { label: "Location", cell: (l) => l.location || "" },
      ],
      (l) => `/customers/${encodeURIComponent(l.customer_id)}`,
      (l) => `customer ${l.customer_id}`,
    ),
  ];
}

function passwordForm(app) {
  const form = h(
    "form",
    { class: "stack" },
    field({ name: "current_password", label: "Current password", type: "password", autocomplete: "current-password", required: true }),
    field({ name: "new_password", label: "New password", type: "password", autocomplete: "new-password", required: true, hint: "At least 8 characters." }),
    field({ name: "password_confirm", label: "Re-type new password", type: "password", autocomplete: "new-password", required: true }),
    field({ name: "end_other_sessions", label: "Sign out everywhere else", type: "checkbox", checked: true }),
    submitButton("Change password"),
  );
  onSubmit(
    form,
    async (v) => {
      const data = await post(PATHS.password, { current_password: v.current_password, new_password: v.new_password, end_other_sessions: v.end_other_sessions });
      form.reset();
      const ended = data && data.sessions_ended ? ` ${data.sessions_ended} other session(s) were signed out.` : "";
      notice(`Your password was changed.${ended}`, "success");
    },
    (v) => {
      const e = requireFields(v, { current_password: "current password", new_password: "new password" });
      if (v.new_password && v.password_confirm !== v.new_password) e.password_confirm = "The two passwords do not match.";
      return e;
    },
  );
  if (app.me.has_password === false) {
    return h("p", {}, `You sign in with ${app.me.external_provider || "an external provider"}, which manages your password.`);
  }
  return form;
}

function emailForm(app) {
  if (app.me.has_password === false) return h("p", {}, `Your email address comes from ${app.me.external_provider || "your external provider"}.`);
  const form = h(
    "form",
    { class: "stack" },
    field({ name: "new_email", label: "New email address", type: "email", autocomplete: "email", required: true }),
    field({ name: "password", label: "Your password", type: "password", autocomplete: "current-password", required: true, hint: "To confirm it is you." }),
    submitButton("Change email address"),
  );
  onSubmit(
    form,
    async (v) => {
      const data = await post(PATHS.email, v);
      form.reset();
      notice(`We sent a verification link to ${(data && data.pending_email) || v.new_email}. Your address changes when you open it.`, "success");
    },
    (v) => requireFields(v, { new_email: "new email address", password: "password" }),
  );
  return form;
}

// "Chrome on Linux" rather than the whole user-agent string; the full one is in the title.
function device(ua) {
  if (!ua) return "Unknown browser";
  const browser = [["Edg/", "Edge"], ["Firefox/", "Firefox"], ["Chrome/", "Chrome"], ["Safari/", "Safari"]].find(([k]) => ua.includes(k));
  const system = [["Android", "Android"], ["iPhone", "iPhone"], ["iPad", "iPad"], ["Windows", "Windows"], ["Mac OS", "macOS"], ["Linux", "Linux"]].find(([k]) => ua.includes(k));
  if (!browser && !system) return ua.slice(0, 60);
  return `${browser ? browser[1] : "A browser"}${system ? ` on ${system[1]}` : ""}`;
}

async function sessionsSection(rerender) {
  let list;
  try {
    list = items(await get(PATHS.sessions), "sessions");
  } catch (err) {
    return loadError(err, "Your sessions");
  }
  const others = list.filter((s) => !s.current);
  return [
    table({
      caption: "Where you are signed in",
      captionHidden: true,
      columns: [
        { label: "Signed in", cell: (s) => date(s.created_at) },
        { label: "Device", cell: (s) => [h("span", { title: s.user_agent || "" }, device(s.user_agent)), s.current ? h("span", { class: "badge" }, "This device") : null] },
        { label: "From", cell: (s) => s.client_ip || "" },
        { label: "Last active", cell: (s) => date(s.last_seen_at) },
        {
          label: "Actions",
          cell: (s) =>
            s.current
              ? ""
              : h(
                  "button",
                  {
                    type: "button",
                    class: "linklike danger",
                    on: {
                      click: async () => {
                        try {
                          await del(PATHS.session(s.session_id));
                          notice("That session was signed out.", "success");
                          rerender();
                        } catch (err) {
                          notice(err.message, "error");
                        }
                      },
                    },
                  },
                  "Sign out",
                  h("span", { class: "visually-hidden" }, ` session from ${date(s.created_at)}`),
                ),
        },
      ],
      rows: list,
    }),
    others.length
      ? h(
          "p",
          {},
          h(
            "button",
            {
              type: "button",
              class: "btn",
              on: {
                click: async () => {
                  try {
                    await del(PATHS.sessions);
                    notice("You were signed out everywhere else.", "success");
                    rerender();
                  } catch (err) {
                    notice(err.message, "error");
                  }
                },
              },
            },
            "Sign out all other sessions",
          ),
        )
      : null,
  ];
}

// Earlier registrations (the old portal) with this address: the resident confirms which are theirs.
async function legacySection(rerender) {
  let matches;
  try {
    matches = items(await get(PATHS.legacyMatches), "matches");
  } catch {
    return null;
  }
  if (!matches.length) return null;
  const form = h(
    "form",
    { class: "stack" },
    h("p", {}, "We found earlier registrations with your email address. Choose the ones that are yours: their accounts are linked to your user ID again."),
    matches.map((m) =>
      field({
        name: `legacy-${m.legacy_id}`,
        label: `User ID ${m.user_id}: account${(m.account_numbers || []).length === 1 ? "" : "s"} ${(m.account_numbers || []).join(", ")}`,
        type: "checkbox",
      }),
    ),
    submitButton("These are mine"),
  );
  onSubmit(form, async (values) => {
    const ids = matches.filter((m) => values[`legacy-${m.legacy_id}`]).map((m) => m.legacy_id);
    const result = await post(PATHS.legacyClaims, { legacy_ids: ids });
    const restored = (result && result.restored) || [];
    notice(restored.length ? `Linked again: ${restored.join(", ")}.` : "Done: none of them were linked.", "success");
    rerender();
  });
  return card("Earlier registrations", form);
}

async function settingsPage(ctx) {
  const { app } = ctx;
  const rerender = () => app.navigate(location.pathname + location.search, { replace: true, keepStatus: true });
  let linksContent;
  try {
    linksContent = linksSection(items(await get(PATHS.links), "links"), rerender);
  } catch (err) {
    linksContent = loadError(err, "Your linked accounts");
  }
  const me = app.me;
  const content = [
    pageHeader("Account settings"),
    card(
      "Account information",
      dl([
        ["Now signed in as", me.display_user_id || me.user_id],
        ["Last successful sign-in", me.last_successful_login ? date(me.last_successful_login) : "None before this one"],
        ["Email address", me.email],
        me.external_provider ? ["Signs in with", me.external_provider] : null,
      ].filter(Boolean)),
    ),
    await legacySection(rerender),
    h("section", { class: "card", id: "links", "aria-labelledby": "links-h" }, h("h2", { id: "links-h" }, "Linked accounts"), linksContent),
    h("div", { class: "grid" }, card("Change password", passwordForm(app)), card("Change email address", emailForm(app))),
    h("section", { class: "card", id: "sessions", "aria-labelledby": "sessions-h" }, h("h2", { id: "sessions-h" }, "Where you are signed in"), await sessionsSection(rerender)),
  ];
  if (ctx.path === "/settings/links") {
    setTimeout(() => {
      const el = document.getElementById("links-h");
      if (el) {
        el.setAttribute("tabindex", "-1");
        el.scrollIntoView();
      }
    }, 0);
  }
  return content;
}

async function newLinkPage({ query, app }) {
  const type = query.get("type") === "customer" ? "customer" : "utility";
  const result = h("div");
  const utilityFields = h(
    "div",
    { class: "type-fields", "data-type": "utility", hidden: type !== "utility" },
    field({ name: "account_number", label: "Account number", inputmode: "numeric", autocomplete: "off", required: true, hint: "The first number in “Account Number - Customer Number” on your bill." }),
    field({ name: "customer_id", label: "Customer number", inputmode: "numeric", autocomplete: "off", required: true, hint: "The second number, also called customer ID." }),
  );
  const customerFields = h(
    "div",
    { class: "type-fields", "data-type": "customer", hidden: type !== "customer" },
    field({ name: "customer_number", id: "f-customer-number", label: "Customer ID or account number", inputmode: "numeric", autocomplete: "off", required: true }),
    field({ name: "name", label: "Name", autocomplete: "off", required: true, hint: "Exactly as it is printed on your bill." }),
  );
  const typeField = field({
    name: "type",
    label: "What kind of account?",
    type: "radio-group",
    value: type,
    options: [
      { value: "utility", label: "Utility billing account (water, sewer)" },
      { value: "customer", label: "Customer account (general billing invoices)" },
    ],
  });
  const form = h("form", { class: "stack" }, typeField, utilityFields, customerFields, submitButton("Link account"));
  form.addEventListener("change", (event) => {
    if (event.target.name !== "type") return;
    for (const box of form.querySelectorAll(".type-fields")) box.hidden = box.dataset.type !== event.target.value;
  });
  onSubmit(
    form,
    async (v) => {
      let body;
      if (v.type === "customer") {
        body = { type: "customer", name: v.name };
        // The old portals take either number in one box; a customer ID is what most bills show.
        body[/^\d{1,6}$/.test(v.customer_number) ? "customer_id" : "account_number"] = v.customer_number;
      } else {
        body = { type: "utility", account_number: v.account_number, customer_id: v.customer_id };
      }
      try {
        await post(PATHS.links, body);
      } catch (err) {
        if (err.errors && v.type === "customer") {
          for (const key of ["customer_id", "account_number"]) {
            if (err.errors[key]) {
              err.errors.customer_number = err.errors[key];
              delete err.errors[key];
            }
          }
        }
        throw err;
      }
      notice("The account is now linked to your user ID.", "success");
      app.navigate("/settings/links", { keepStatus: true });
    },
    (v) => {
      if (v.type === "customer") return requireFields(v, { customer_number: "customer ID or account number", name: "name as printed on your bill" });
      return requireFields(v, { account_number: "account number", customer_id: "customer number" });
    },
    { pair: ["account_number", "customer_id", "customer_number", "name"] },
  );
  return [
    pageHeader("Link to account", "Enter the values from your bill. We check them against the city’s records.", [["/settings", "Account settings"], [null, "Link to account"]]),
    h("div", { class: "with-figure card" }, h("div", {}, form, result), billFigure(type === "customer" ? "general" : "utility")),
    alertBox("For utility bills choose “Utility billing account”, not “Customer account”.", "info"),
  ];
}

export const routes = [
  { path: "/settings", page: settingsPage, auth: true, title: "Account settings" },
  { path: "/settings/links", page: settingsPage, auth: true, title: "Account settings" },
  { path: "/settings/links/new", page: newLinkPage, auth: true, title: "Link to account" },
];

