//! Diesel's view of the tables in `migrations/`. Only types both backends share: booleans are
//! `Integer` 0/1, money `BigInt` minor units, times `BigInt` Unix milliseconds.

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    customers (id) {
        id -> BigInt,
        email -> Text,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        currency -> Text,
        customer_id -> BigInt,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        address -> Text,
        zipcode -> Text,
        city -> Text,
        country -> Text,
        shipping_fee -> BigInt,
        payment_provider -> Nullable<Text>,
        payment_reference -> Nullable<Text>,
        authorized -> BigInt,
        committed -> BigInt,
        shipping_fee_committed -> Integer,
        next_shipment_number -> Integer,
        created_at -> BigInt,
        updated_at -> BigInt,
        refunded -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    order_lines (order_id, line_id) {
        order_id -> BigInt,
        line_id -> BigInt,
        position -> Integer,
        sku -> Text,
        name -> Text,
        unit_price -> BigInt,
        tax_rate -> Integer,
        quantity -> Integer,
        allocated -> Integer,
        in_capture -> Integer,
        returned -> Integer,
    }
}

diesel::table! {
    shipments (order_id, number) {
        order_id -> BigInt,
        number -> Integer,
        state -> Text,
        gtg -> Integer,
        shipped -> Integer,
        carrier -> Text,
        service -> Text,
        packages -> Integer,
        tracking -> Text,
        return_slip_tracking -> Text,
        send_email -> Nullable<Integer>,
        capture_amount -> Nullable<BigInt>,
        carries_shipping_fee -> Integer,
        capture_reference -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        shipped_at -> Nullable<BigInt>,
        needs_review -> Integer,
        request_key -> Nullable<Text>,
        internal_comment -> Text,
        refund_held -> BigInt,
        refunded -> BigInt,
        shipping_fee_returned -> Integer,
        row_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    hand_settlements (order_id, idempotency_key) {
        order_id -> BigInt,
        idempotency_key -> Text,
        number -> Integer,
        finding -> Text,
        detail -> Text,
        state_after -> Text,
        settled_at -> BigInt,
    }
}

diesel::table! {
    refund_hand_settlements (idempotency_key) {
        return_id -> BigInt,
        idempotency_key -> Text,
        finding -> Text,
        detail -> Text,
        state_after -> Text,
        settled_at -> BigInt,
    }
}

diesel::table! {
    order_imports (request_key) {
        request_key -> Text,
        order_id -> BigInt,
        imported_at -> BigInt,
    }
}

diesel::table! {
    shipment_deletions (order_id, number) {
        order_id -> BigInt,
        number -> Integer,
        request_key -> Text,
        deleted_at -> BigInt,
    }
}

diesel::table! {
    shipment_lines (order_id, number, line_id) {
        order_id -> BigInt,
        number -> Integer,
        line_id -> BigInt,
        quantity -> Integer,
        returned -> Integer,
        row_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    capture_attempts (order_id, number, attempt) {
        order_id -> BigInt,
        number -> Integer,
        attempt -> Integer,
        idempotency_key -> Text,
        amount -> BigInt,
        final_capture -> Integer,
        state -> Text,
        provider_reference -> Nullable<Text>,
        decline_code -> Nullable<Text>,
        decline_message -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        passes -> Integer,
        last_error -> Nullable<Text>,
        void_on_decline -> Integer,
        on_capture -> Nullable<Text>,
        request_key -> Nullable<Text>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        label -> Text,
        prefix -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    idempotency_keys (api_key_id, request_key) {
        api_key_id -> BigInt,
        request_key -> Text,
        fingerprint -> Text,
        state -> Text,
        status -> Nullable<Integer>,
        content_type -> Nullable<Text>,
        body -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    invoices (number) {
        number -> BigInt,
        order_id -> BigInt,
        shipment_number -> Integer,
        amount -> BigInt,
        issued_at -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        order_id -> BigInt,
        number -> Integer,
        kind -> Text,
        state -> Text,
        attempts -> Integer,
        due_at -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    returns (id) {
        id -> BigInt,
        order_id -> BigInt,
        number -> Integer,
        completed -> Integer,
        return_to_stock -> Integer,
        comment -> Text,
        units -> BigInt,
        shipping_cost -> BigInt,
        handling_cost -> BigInt,
        voucher_value -> BigInt,
        return_cost -> BigInt,
        tax_value -> BigInt,
        refund_value -> BigInt,
        takes_shipping_fee -> Integer,
        refund_state -> Text,
        refund_reference -> Nullable<Text>,
        decline_code -> Nullable<Text>,
        decline_message -> Nullable<Text>,
        send_email -> Integer,
        request_key -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    return_lines (return_id, line_id) {
        return_id -> BigInt,
        line_id -> BigInt,
        id -> BigInt,
        order_id -> BigInt,
        number -> Integer,
        quantity -> Integer,
        unit_price -> BigInt,
    }
}

diesel::table! {
    refund_attempts (return_id, attempt) {
        return_id -> BigInt,
        attempt -> Integer,
        order_id -> BigInt,
        idempotency_key -> Text,
        amount -> BigInt,
        state -> Text,
        provider_reference -> Nullable<Text>,
        provider_status -> Nullable<Text>,
        decline_code -> Nullable<Text>,
        decline_message -> Nullable<Text>,
        passes -> Integer,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        rest_millis -> BigInt,
    }
}

diesel::table! {
    credit_notes (number) {
        number -> BigInt,
        return_id -> BigInt,
        amount -> BigInt,
        issued_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    returns,
    return_lines,
    refund_attempts,
    credit_notes,
    orders,
    order_lines,
    shipments,
    shipment_lines,
    capture_attempts,
);
