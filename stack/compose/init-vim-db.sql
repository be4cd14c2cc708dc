-- The application's own database beside Temporal's (the worker migrates it at start).
CREATE USER vim WITH PASSWORD 'vim';
CREATE DATABASE vim OWNER vim;
