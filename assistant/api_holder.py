"""API holder: the one shared `Service` behind the HTTP API, opened lazily and kept in step with the store.

Requests never wait for a refresh: the store is checked in a background thread (at most every
REFRESH_EVERY_S seconds; the indexes are rebuilt when it changed) while requests go on with the current
indexes, swapped in whole when ready. Only an ingest's own refresh (`force`) waits its turn.
"""

from __future__ import annotations

import logging
import threading
import time

from assistant.service import Service, open_service
from assistant.settings import Settings

log = logging.getLogger("newsqa.api")
REFRESH_EVERY_S = 3.0


class ServiceHolder:
    """The one shared Service: opened lazily, refreshed at most every REFRESH_EVERY_S seconds.

    Requests never wait for a refresh: a due check of the store (and the rebuild of the indexes when it
    changed) runs in one background thread while requests go on with the current indexes, swapped in whole
    when ready. Only an ingest (`force`) waits, so its answer reflects what it added. The article list is
    cached per version of the indexes.
    """

    def __init__(self, settings: Settings, service: Service | None = None) -> None:
        self.settings, self._service = settings, service
        self._open_lock, self._refresh_lock = threading.Lock(), threading.Lock()
        self.ingest_lock = threading.Lock()
        self._checked = time.monotonic()
        self._records: tuple[str, list[tuple[str, dict]]] = ("", [])

    def warm(self) -> None:
        """Start opening the service now, in the background (the app's startup): the first request finds
        it open, or waits for the open already under way. A failure is logged; requests try again."""
        if self._service is None:
            threading.Thread(target=self._warm, name="newsqa-open", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.get()
        except Exception as err:
            log.warning("opening the service at startup failed (requests will retry): %s: %s",
                        type(err).__name__, err)

    def get(self) -> Service:
        if (service := self._service) is not None:
            return service
        with self._open_lock:
            if self._service is None:
                self._service = open_service(self.settings)
                self._checked = time.monotonic()
            return self._service

    def fresh(self, force: bool = False) -> Service:
        """The service. With `force`, its indexes are brought in step with the store first (waiting for a
        refresh under way); otherwise a due check runs in the background and this request goes on."""
        service = self.get()
        if force:
            with self._refresh_lock:
                self._refresh(service)
        elif time.monotonic() - self._checked >= REFRESH_EVERY_S and self._refresh_lock.acquire(False):
            threading.Thread(target=self._refresh_then_release, args=(service,), name="newsqa-refresh",
                             daemon=True).start()
        return service

    def _refresh_then_release(self, service: Service) -> None:
        try:
            self._refresh(service)
        except Exception as err:  # e.g. the store is unreachable: the next check tries again
            log.warning("index refresh failed: %s: %s", type(err).__name__, err)
        finally:
            self._refresh_lock.release()

    def _refresh(self, service: Service) -> None:
        try:
            service.refresh()
        finally:
            self._checked = time.monotonic()

    def records(self) -> list[tuple[str, dict]]:
        """(id, metadata) of every article record, read once per version of the indexes."""
        service = self.fresh()
        key, records = self._records
        if key != service.indexes.fingerprint:
            key = service.indexes.fingerprint
            records = [(i, m) for i, m, _ in service.store.all_records()]
            self._records = (key, records)
        return records
