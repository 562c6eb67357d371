"""Request instrumentation shared by every app."""

import time

from django.conf import settings
from django.db import connection


class ServerTimingMiddleware:
    """With SERVER_TIMING on, add a `Server-Timing` header: the whole request's
    server time, the time spent in the database and the number of queries
    (`app;dur=12.3, db;dur=4.5;desc="queries=7"`). Benchmarks read it; browsers
    show it in their developer tools. Off by default outside DEBUG."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.enabled = settings.SERVER_TIMING

    def __call__(self, request):
        if not self.enabled:
            return self.get_response(request)
        counter = QueryCounter()
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        elapsed = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = (
            f'app;dur={elapsed:.1f}, db;dur={counter.seconds * 1000:.1f};desc="queries={counter.count}"'
        )
        return response


class QueryCounter:
    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started
