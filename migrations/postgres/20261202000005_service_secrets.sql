-- Secrets the service makes for itself and shares between its instances, by
-- name; for now the key that signs one-click links ('link'). The first
-- instance to start creates it; `marginalia secret rotate` replaces it.
CREATE TABLE service_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
