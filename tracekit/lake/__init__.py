"""The lake: Apache Iceberg tables (Parquet files, partitioned by hour) that many collectors
share, with the catalog in PostgreSQL (docs/guides/lake.md).

location.py opens the catalog a lake URI names; tables.py holds the tables' schemas;
shipping.py moves a store's committed batches into them, once each; reader.py reads them
with DuckDB. Needs the `lake` extra (pyiceberg, psycopg2).
"""
