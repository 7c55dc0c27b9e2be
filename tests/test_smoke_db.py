def test_fixture_database_is_migrated(sql):
    assert sql.execute("SELECT count(*) FROM pastes").fetchone() == (0,)
