-- An NGO client speaks for one organization: its listings are published under these identifiers,
-- so an NGO cannot publish under another organization, and entity resolution merges its listings
-- into what grant lists and departments already know of it (by INN or OGRN). organization_id is
-- the canonical catalog id the client was bound to by a claim ('' when bound by identifiers only).
ALTER TABLE api_clients
    ADD COLUMN organization_id   text NOT NULL DEFAULT '',
    ADD COLUMN organization_inn  text NOT NULL DEFAULT '' CHECK (organization_inn ~ '^(\d{10}|\d{12})?$'),
    ADD COLUMN organization_ogrn text NOT NULL DEFAULT '' CHECK (organization_ogrn ~ '^(\d{13}|\d{15})?$'),
    ADD COLUMN organization_name text NOT NULL DEFAULT '',
    ADD CONSTRAINT api_clients_organization_ngo_check CHECK (
        kind = 'ngo' OR (organization_id = '' AND organization_inn = '' AND organization_ogrn = ''));
