"""Right to erasure (GDPR art. 17): one person out of every layer, and kept out on arrival (no Dagster here).

`service.erase` carries out a request; `arrival.screen_arrivals` is the hook the raw loads call."""
