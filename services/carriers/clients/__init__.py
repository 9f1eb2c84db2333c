"""Poll clients, one module per carrier API, each shaped like ``services.carriers.client.DhlClient``.

Every client has ``from_settings(settings)``, is an async context manager, and ``fetch(number)``
returns a ``FetchResult`` for every answer the carrier's adapter can read (including 4xx error
bodies) or raises ``CarrierUnavailable`` on 429, 5xx, timeouts and network errors. Base URLs and
credentials are read from the settings with ``getattr`` and default to the local simulator.
"""
