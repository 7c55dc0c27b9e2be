DROP FUNCTION rate_limit_take(text, text, double precision, double precision);
