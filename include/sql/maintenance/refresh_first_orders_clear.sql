-- A load changed the orders from @changed_from on: a first order on or after it may have
-- changed or gone; one before it has not (the orders before @changed_from are the same).
delete from {{ tables.first_orders }}
where first_order_date >= @changed_from
