"""Run localstripe (GPL-3.0, used unmodified as a separate process) on 127.0.0.1 only.

localstripe's own CLI binds every interface ('::') and reloads its pickle from
/tmp/localstripe.pickle unless --from-scratch. This launcher always starts from
scratch, binds 127.0.0.1 and turns off the pickle dump (it rewrites the whole
store to a shared /tmp file on every write: slow, and it would mix runs).
"""
import argparse
import logging
import sys

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from localstripe import resources
from localstripe import webhooks
from localstripe.server import app

from upstream import OUTSTANDING_WEBHOOKS_PATH


def count_outstanding_webhooks():
    """localstripe sends each event a second after the call that made it (schedule_webhook
    starts _send_webhook in the background): count the ones scheduled and not yet posted, so
    the front can tell when nothing more is on its way (GET OUTSTANDING_WEBHOOKS_PATH)."""
    state = {"outstanding": 0}
    send = webhooks._send_webhook

    def counted_send(event):
        state["outstanding"] += 1  # at scheduling, before the coroutine first runs

        async def run():
            try:
                await send(event)
            finally:
                state["outstanding"] -= 1
        return run()

    webhooks._send_webhook = counted_send

    async def outstanding(request):
        return web.json_response({"outstanding": state["outstanding"]})
    app.router.add_get(OUTSTANDING_WEBHOOKS_PATH, outstanding)


class PathLogger(AbstractAccessLogger):
    """Method, path and status: no query strings (they can hold emails)."""

    def log(self, request, response, time):
        self.logger.info("%s %s %s", request.method, request.path, response.status)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args()

    resources.Store.dump_to_disk = lambda self: None
    resources.store.clear()
    count_outstanding_webhooks()

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="localstripe %(levelname)s %(message)s")
    access = logging.getLogger("aiohttp.access")
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=access,
                access_log_class=PathLogger, print=None)


if __name__ == "__main__":
    main()
