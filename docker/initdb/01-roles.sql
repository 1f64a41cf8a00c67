-- Runs once, when the data volume is created (docker-entrypoint-initdb.d), as the superuser, in database lq.
-- The seed's three logins. pgqueue's initialize() grants privileges only to the two NOLOGIN group roles;
-- creating them here means the admin needs no CREATEROLE.

create role queue_worker nologin;
create role queue_user nologin;

create role lqadmin login password 'lqadmin';
create role lqworker login password 'lqworker' in role queue_worker;
create role lquser login password 'lquser' in role queue_user;

-- The admin owns the database, so initialize() can create the pgqueue schema and own its tables.
alter database lq owner to lqadmin;
