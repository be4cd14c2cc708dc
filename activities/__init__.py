"""All I/O: Postgres (asyncpg), the model (anthropic), deliveries, imports."""
