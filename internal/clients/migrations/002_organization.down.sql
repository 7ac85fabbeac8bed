ALTER TABLE api_clients
    DROP CONSTRAINT api_clients_organization_ngo_check,
    DROP COLUMN organization_id,
    DROP COLUMN organization_inn,
    DROP COLUMN organization_ogrn,
    DROP COLUMN organization_name;
