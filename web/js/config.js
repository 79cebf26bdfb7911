// The deployment's settings, from /config.json next to the pages (generated from the stack's
// outputs; locally by local/site_server.py). Fetched once per page.
let loading;

export function config() {
  loading ??= fetch("/config.json", { cache: "no-store" }).then(async (response) => {
    if (!response.ok) throw new Error(`config.json answered ${response.status}`);
    return response.json();
  });
  return loading;
}
