DROP FUNCTION content_sha256(text);
DROP TABLE blocked_content;
DROP TABLE removed_pastes;
DROP TABLE reports;
