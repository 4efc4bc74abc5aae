-- The national Do-Not-Call registry shared by every node: each import is a version whose compact
-- set (Elias-Fano bytes, as in DATA_DIR/dnc/ on a single SQLite node) is stored in chunks. A
-- version is staged chunk by chunk, then put in force by one audited write to
-- dnc_registry_current; every node LISTENs on callguard_dnc and loads the new version.
CREATE TABLE dnc_registry_versions (
    version BIGSERIAL PRIMARY KEY,
    numbers BIGINT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    size BIGINT NOT NULL,
    set_sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL
);

CREATE TABLE dnc_registry_chunks (
    version BIGINT NOT NULL REFERENCES dnc_registry_versions (version) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (version, seq)
);
-- The set's bytes do not compress: store them out of line without trying.
ALTER TABLE dnc_registry_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- At most one row: the version in force.
CREATE TABLE dnc_registry_current (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL REFERENCES dnc_registry_versions (version)
);

CREATE FUNCTION callguard_dnc_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('callguard_dnc', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER dnc_registry_changed AFTER INSERT OR UPDATE ON dnc_registry_current
    FOR EACH STATEMENT EXECUTE FUNCTION callguard_dnc_changed();
