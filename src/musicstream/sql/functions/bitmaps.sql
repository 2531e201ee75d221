-- Sets of listeners as bitmaps: bit n set for listener number n (users.listener_no). A period's distinct
-- listeners are the bit count of the OR of its days' bitmaps.
--
-- Repeatable: `musicstream init` applies this file again whenever it changes (db/schema.py); it holds the one
-- current body of each function below.

-- The union of bitmaps of any lengths (shorter ones padded with zeros); bit_count() of it counts the listeners.
CREATE OR REPLACE FUNCTION bits_or(a varbit, b varbit)
RETURNS varbit
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN a IS NULL THEN b
        WHEN b IS NULL THEN a
        WHEN length(a) < length(b) THEN (a || repeat('0', length(b) - length(a))::varbit) | b
        ELSE a | (b || repeat('0', length(a) - length(b))::varbit)
    END
$$;

-- The union of a column of bitmaps.
CREATE OR REPLACE AGGREGATE bits_union(varbit) (SFUNC = bits_or, STYPE = varbit, COMBINEFUNC = bits_or,
                                                 PARALLEL = SAFE);

-- Whether bit n of a bitmap is set (false past its end).
CREATE OR REPLACE FUNCTION bit_is_set(b varbit, n int)
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT n IS NOT NULL AND n >= 0 AND n < length(b) AND get_bit(b, n) = 1
$$;

-- The bits set in a bitmap, as listener numbers.
CREATE OR REPLACE FUNCTION bit_positions(b varbit)
RETURNS SETOF int
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (n - 1)::int FROM string_to_table(b::text, NULL) WITH ORDINALITY AS t(bit, n) WHERE bit = '1'
$$;

-- The intersection of two bitmaps of any lengths (the bits set in both).
CREATE OR REPLACE FUNCTION bits_and(a varbit, b varbit)
RETURNS varbit
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN length(a) < length(b) THEN a & substring(b FROM 1 FOR length(a))
        ELSE substring(a FROM 1 FOR length(b)) & b
    END
$$;

-- The bitmap of some listener numbers (bit n set for listener n; as long as the whole bytes it needs).
CREATE OR REPLACE FUNCTION listener_bitmap(p_listeners int[])
RETURNS varbit
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(('x' || string_agg(repeat('00', byte - prev - 1) || lpad(to_hex(bits), 2, '0'), '' ORDER BY byte))::varbit,
                    B'')
    FROM (
        SELECT byte, bits, lag(byte, 1, -1) OVER (ORDER BY byte) AS prev
        FROM (SELECT n / 8 AS byte, bit_or(128 >> (n % 8)) AS bits FROM unnest(p_listeners) n GROUP BY 1) b
    ) g
$$;
