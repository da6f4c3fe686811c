-- A small, realistic Spectral schema and data for the twin's Postgres.
-- The number of rows is multiplied by the setting runbooks.scale (`runbooks sandbox up --scale N`).
-- restore_markers is how data runbooks prove what a restore contains: insert a labelled row before a
-- backup or a point in time, check for it after the restore.

create table tenants (
    id          bigserial primary key,
    slug        text not null unique,
    name        text not null,
    plan        text not null check (plan in ('free', 'team', 'enterprise')),
    region      text not null default 'oregon',
    created_at  timestamptz not null default now()
);

create table users (
    id          bigserial primary key,
    tenant_id   bigint not null references tenants(id) on delete cascade,
    email       text not null unique,
    display_name text not null,
    role        text not null check (role in ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz not null default now(),
    last_seen_at timestamptz
);
create index users_tenant_idx on users (tenant_id);

create table sessions (
    id          uuid primary key default gen_random_uuid(),
    user_id     bigint not null references users(id) on delete cascade,
    user_agent  text not null,
    ip          inet not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
create index sessions_user_idx on sessions (user_id);

create table documents (
    id          bigserial primary key,
    tenant_id   bigint not null references tenants(id) on delete cascade,
    author_id   bigint references users(id) on delete set null,
    title       text not null,
    body        text not null,
    -- embeddings as plain float4 arrays (the managed database uses pgvector; same values)
    embedding   real[] not null check (cardinality(embedding) = 64),
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create index documents_tenant_idx on documents (tenant_id);

create table audit_events (
    id          bigserial primary key,
    tenant_id   bigint not null references tenants(id) on delete cascade,
    actor_id    bigint references users(id) on delete set null,
    action      text not null,
    subject     text not null,
    detail      jsonb not null default '{}',
    occurred_at timestamptz not null default now()
);
create index audit_events_tenant_time_idx on audit_events (tenant_id, occurred_at);

create table api_usage (
    tenant_id   bigint not null references tenants(id) on delete cascade,
    day         date not null,
    endpoint    text not null,
    requests    integer not null,
    p95_ms      real not null,
    primary key (tenant_id, day, endpoint)
);

create table restore_markers (
    id          serial primary key,
    label       text unique not null,
    created_at  timestamptz not null default clock_timestamp()
);

-- data ------------------------------------------------------------------------------------------

insert into tenants (slug, name, plan, created_at)
select 'tenant-' || g, 'Tenant ' || g,
       (array['free', 'team', 'enterprise'])[1 + g % 3],
       now() - make_interval(days => 400 - g % 400)
from generate_series(1, 20 * current_setting('runbooks.scale')::int) g;

insert into users (tenant_id, email, display_name, role, created_at, last_seen_at)
select 1 + (g - 1) % (select count(*) from tenants), 'user' || g || '@example.test', 'User ' || g,
       (array['owner', 'admin', 'member', 'member', 'viewer'])[1 + g % 5],
       now() - make_interval(days => g % 365), now() - make_interval(mins => g % 10000)
from generate_series(1, 200 * current_setting('runbooks.scale')::int) g;

insert into sessions (user_id, user_agent, ip, created_at, expires_at)
select 1 + (g - 1) % (select count(*) from users),
       (array['Mozilla/5.0 (Macintosh)', 'Mozilla/5.0 (Windows NT 10.0)', 'spectral-cli/2.3'])[1 + g % 3],
       ('10.' || (g / 65536) % 256 || '.' || (g / 256) % 256 || '.' || g % 256)::inet,
       now() - make_interval(hours => g % 72), now() + make_interval(hours => 24 - g % 72)
from generate_series(1, 1000 * current_setting('runbooks.scale')::int) g;

insert into documents (tenant_id, author_id, title, body, embedding, created_at)
select 1 + (g - 1) % (select count(*) from tenants), 1 + (g - 1) % (select count(*) from users),
       'Document ' || g, repeat('Spectral analysis notes ' || g || '. ', 4),
       array(select (sin(g * 0.1 + i) * 0.5)::real from generate_series(1, 64) i),
       now() - make_interval(days => g % 300)
from generate_series(1, 2000 * current_setting('runbooks.scale')::int) g;

insert into audit_events (tenant_id, actor_id, action, subject, detail, occurred_at)
select 1 + (g - 1) % (select count(*) from tenants), 1 + (g - 1) % (select count(*) from users),
       (array['login', 'document.create', 'document.update', 'member.invite', 'key.rotate'])[1 + g % 5],
       'doc:' || g, jsonb_build_object('seq', g, 'ok', g % 7 <> 0),
       now() - make_interval(mins => g)
from generate_series(1, 5000 * current_setting('runbooks.scale')::int) g;

insert into api_usage (tenant_id, day, endpoint, requests, p95_ms)
select t, current_date - d, e, 100 + (t * 37 + d * 11) % 5000, 40 + ((t + d) % 90)::real
from generate_series(1, 20 * current_setting('runbooks.scale')::int) t,
     generate_series(0, 29) d,
     unnest(array['/v1/documents', '/v1/search', '/v1/events']) e;

insert into restore_markers (label) values ('seed');

analyze;
