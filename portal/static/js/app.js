// Behaviour that would otherwise need inline scripts (the CSP forbids them).
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLElement && el.matches("[data-autosubmit]") && el.form) {
    el.form.requestSubmit();
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (button) {
    const source = document.getElementById(button.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    }
  }
});

// The navigation on narrow screens: a menu button opens and closes the sidebar.
document.addEventListener("click", (event) => {
  const toggle = event.target instanceof Element ? event.target.closest("[data-nav-toggle]") : null;
  const shell = document.querySelector("[data-shell]");
  if (!toggle || !shell) {
    return;
  }
  const open = shell.classList.toggle("nav-open");
  toggle.setAttribute("aria-expanded", String(open));
});
