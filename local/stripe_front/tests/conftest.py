"""Fixtures the front's feature test modules share: one webhook receiver and one front (over a
real localstripe) per module, its logs in a folder named after the module."""

import pytest

from test_front import SECRET, Receiver, running_front


@pytest.fixture(scope="module")
def hooks():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def front(request, tmp_path_factory, hooks):
    endpoints = {"main": {"url": hooks.url + "/hook", "secret": SECRET}}
    logs = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "_logs")
    with running_front(logs, endpoints) as client:
        yield client
