"""The database side: connections (embedded or any libpq URL), schema migrations, SQL files."""
