// Loaded in <head> before the page is drawn: marks that scripts run, so the stylesheet can
// keep long tables short until their script has taken over (see style.css, table-ready).
document.documentElement.classList.add("js");
