// A stand-in for a bundler's output: a client-side router over the API behind /api/.
const app = document.getElementById("app");
const route = location.pathname;
fetch("/api" + (route === "/" ? "/" : route))
  .then((answer) => answer.text())
  .then((text) => { app.textContent = `${route}: ${text}`; })
  .catch((error) => { app.textContent = `${route}: the API is down (${error})`; });
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/service-worker.js");
