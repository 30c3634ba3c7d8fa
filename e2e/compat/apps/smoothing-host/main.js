// A page that embeds the view smoothing app in an iframe (same session: this page's ?q= and #pw=)
// and steers the app's avatar through the Messenger protocol: the app says "ready", the container
// answers with a "goto".
const frame = document.getElementById("app");
frame.src = `../smoothing/${location.search}${location.hash}`;
window.addEventListener("message", (event) => {
  if (event.source !== frame.contentWindow || event.data?.event !== "ready") return;
  document.getElementById("log").textContent = `app ready (view ${event.data.data.viewId}): sending goto`;
  frame.contentWindow.postMessage({ event: "goto", data: { x: 321, y: 123 } }, "*");
  document.body.dataset.sent = event.data.data.viewId;
});
