-- zhparser's own database, `zhparser` (the gateway's ZHPARSER_DATABASE default), made when a new
-- data directory is initialised. The `chinese` configuration lives there and never in Immich's
-- database, so Immich's backups hold nothing that needs zhparser and restore onto any
-- PostgreSQL. The gateway makes the same itself at start where it is missing.
CREATE DATABASE zhparser;
\connect zhparser
\i /usr/local/share/aio/zhparser.sql
\i /usr/local/share/aio/zhparser-settings.sql
