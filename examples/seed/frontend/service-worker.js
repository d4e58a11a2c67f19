// Must never be cached (the route file says no-store), or a browser keeps an old one.
self.addEventListener("fetch", () => {});
