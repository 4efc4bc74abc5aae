-- A national id belongs to one customer: the blind index holds each national id once, so a
-- second registration with a customer's PESEL (or NIP, REGON) is refused by the database itself,
-- also when two registrations race. Phones, e-mails and services may still be shared.
--
-- A database written before this rule may already hold one national id for several customers.
-- The migration does not fail on them and deletes nothing: the first holder keeps the id (an
-- active customer before an inactive one, then the earliest registered, then the lowest id), and
-- the others' entries are set aside under the kind `national_id_duplicate`, which no search
-- reads. Those customers can no longer be identified by that id, and an operation on one of
-- them is refused (409 duplicate-national-id) until the duplicate is resolved, e.g. by erasing
-- the record that should not exist. List them with
--   SELECT customer_id FROM customer_index WHERE kind = 'national_id_duplicate';
UPDATE customer_index
   SET kind = 'national_id_duplicate'
 WHERE kind = 'national_id'
   AND EXISTS (
       SELECT 1
         FROM customer_index AS held
         JOIN customers AS holder ON holder.id = held.customer_id
         JOIN customers AS me ON me.id = customer_index.customer_id
        WHERE held.kind = 'national_id'
          AND held.hash = customer_index.hash
          AND held.customer_id <> customer_index.customer_id
          AND (
              (holder.status = 'active' AND me.status <> 'active')
              OR ((holder.status = 'active') = (me.status = 'active')
                  AND (holder.created_at < me.created_at
                       OR (holder.created_at = me.created_at AND holder.id < me.id)))
          )
   );
CREATE UNIQUE INDEX customer_index_national_id_unique
    ON customer_index (hash) WHERE kind = 'national_id';
