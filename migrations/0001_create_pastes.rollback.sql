DROP TABLE pastes;
