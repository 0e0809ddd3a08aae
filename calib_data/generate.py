#!/usr/bin/env python3
"""Generate edge-compress's own evaluation and calibration data (stdlib only, deterministic).

    python calib_data/generate.py

writes, next to this file:

    intents/train.csv, intents/eval.csv   customer-support intent classification (text,label)
    lm_text/train.txt, lm_text/eval.txt   plain English, one paragraph per line, for causal-LM
                                          calibration and perplexity

Everything is composed from the templates and word lists below, written for this project;
no external data set is used. A fixed seed makes the output byte-identical on every run.
"""
from __future__ import annotations

import csv
import random
import re
from collections import Counter
from pathlib import Path

SEED = 20261129
HERE = Path(__file__).resolve().parent
PER_INTENT = 100      # utterances per intent (train + eval)
EVAL_PER_INTENT = 25  # stratified 25 % eval split
HELDOUT_TEMPLATES = 4  # core templates per intent that only appear in eval ...
EVAL_UNSEEN = 10      # ... giving this many of each intent's eval utterances
TYPO_RATE = 0.10      # share of utterances that get 1-2 typos
LOWER_RATE = 0.15     # share of non-casual utterances written all in lower case

# --------------------------------------------------------------------------- slot fillers
PRODUCTS = [
    "wireless headset", "pair of running shoes", '"Aurora" desk lamp', "kids' backpack", "coffee grinder",
    '27" monitor', "yoga mat", "phone case", "standing desk", "rain jacket", "blender", "air fryer",
    "office chair", "smart watch", "bed sheet set", "hiking backpack", "electric toothbrush",
    "men's wool sweater", "gaming keyboard", "cast iron skillet", "baby monitor", "bluetooth speaker",
    "winter coat", "robot vacuum", "water bottle", "laptop sleeve", "'Nordic' throw blanket",
    "electric kettle", "e-reader", "duvet cover", "women's trail jacket",
]
PAST = ["yesterday", "last Monday", "on Tuesday", "two weeks ago", "on March 3rd", "last Friday",
        "three days ago", "on the 14th", "over the weekend", "at the start of the month",
        "ten days ago", "on June 21", "last week", "a month ago"]
FUTURE = ["next week", "Friday", "the end of the month", "the 1st", "Christmas", "next Tuesday",
          "the weekend", "the 20th"]  # reads after before / until / after / for / to
CITIES = ["Denver", "Leeds", "Toronto", "Austin", "Manchester", "Dublin", "Portland", "Glasgow",
          "Phoenix", "Vancouver", "Cork", "Bristol", "Sydney", "Auckland", "Chicago", "Edinburgh"]
COUNTRIES = ["Canada", "Ireland", "Germany", "Australia", "Mexico", "Norway", "Japan", "the UK",
             "France", "New Zealand", "Spain"]
PLANS = ["Basic", "Plus", "Premium", "Family", "Pro", "Student"]
PAYMENTS = ["Visa", "Mastercard", "PayPal", "Apple Pay", "Amex", "debit card", "Google Pay", "credit card"]
CARRIERS = ["UPS", "FedEx", "DHL", "USPS", "Royal Mail", "the courier", "Canada Post"]
NAMES = ["Maria", "Tom", "Priya", "Jonas", "Aisha", "Liam", "Chen", "Fatima", "Oliver", "Sofia",
         "Marco", "Hannah", "Kwame", "Ines", "Dave", "Yuki"]
SIZES = ["small", "medium", "large", "XL", "size 9", "size 42", "extra small"]
COLORS = ["black", "navy", "red", "olive green", "white", "grey", "mustard yellow", "pink"]
STREETS = ["12 Elm Street", "48 Harbour Road", "221 Baker Street", "7 Mill Lane, Apt 3", "900 Pine Ave",
           "15 Station Road, Flat 2", "3350 Oak Drive", "61 Queen's Crescent"]
CODES = ["SAVE10", "WELCOME15", "SPRING20", "FREESHIP", "VIP25", "BDAY5", "FLASH30", "THANKYOU"]
NUMBERS = ["two", "three", "four", "five", "six", "10", "12", "eight"]


def _order(rng: random.Random) -> str:
    n = rng.randrange(10000, 999999)
    return rng.choice(["#{n}", "{n}", "ORD-{n}", "A{a}-{b}", "#{n}"]).format(
        n=n, a=n % 9000 + 1000, b=n % 900 + 100)


def _amount(rng: random.Random) -> str:
    return rng.choice(["$", "£", "€", "$"]) + rng.choice(
        [str(rng.randrange(5, 300)), f"{rng.randrange(5, 300)}.{rng.choice(['99', '50', '49', '00', '95'])}"])


SLOTS = {
    "order": _order, "amount": _amount,
    "product": lambda r: r.choice(PRODUCTS), "date": lambda r: r.choice(PAST),
    "future": lambda r: r.choice(FUTURE), "city": lambda r: r.choice(CITIES),
    "country": lambda r: r.choice(COUNTRIES), "plan": lambda r: r.choice(PLANS),
    "payment": lambda r: r.choice(PAYMENTS), "carrier": lambda r: r.choice(CARRIERS),
    "name": lambda r: r.choice(NAMES), "size": lambda r: r.choice(SIZES),
    "color": lambda r: r.choice(COLORS), "address": lambda r: r.choice(STREETS),
    "code": lambda r: r.choice(CODES), "days": lambda r: r.choice(NUMBERS),
    "email": lambda r: r.choice(NAMES).lower() + r.choice([".k", "88", "_shop", ".m", "2024", ""]) + "@example.com",
}


def fill(template: str, rng: random.Random, chosen: dict[str, str] | None = None) -> str:
    """Replace {slot} markers. Pass one `chosen` dict for all parts of a message so a slot keeps
    its value (same order number, same name) throughout; {plan2} always differs from {plan}."""
    chosen = {} if chosen is None else chosen

    def value(match: re.Match) -> str:
        key = match.group(1)
        if key not in chosen:
            if key == "plan2":
                chosen[key] = rng.choice([p for p in PLANS if p != chosen.get("plan")])
            elif key in ("product", "other"):  # {other} is a second, different product
                taken = {chosen.get("product"), chosen.get("other")}
                chosen[key] = rng.choice([p for p in PRODUCTS if p not in taken])
            else:
                chosen[key] = SLOTS[key](rng)
        return chosen[key]

    return re.sub(r"\{(\w+)\}", value, template)


# --------------------------------------------------------------------------- intents
# core: full utterances; short: 1-4 word fragments; context: sentences used in long messages.
# Templates marked "# vs X" deliberately use the vocabulary of a confusable intent X.
INTENTS: dict[str, dict[str, list[str]]] = {
    "track_order": {
        "core": [
            "Where is my order {order}?", "Can you tell me where my package is?",
            "I ordered the {product} {date} and it still hasn't arrived. Where is it?",
            "When will order {order} be delivered?", "Has my order shipped yet?",
            "What's the tracking number for order {order}?",
            "The tracking page for {order} hasn't updated in {days} days.",
            "Is my {product} on its way?",
            "Tracking says out for delivery since this morning, any idea when it'll actually get here?",
            "My parcel is stuck in {city} according to {carrier}. Is it still moving?",
            "How do I track my order?", "I need an update on the delivery of order {order}.",
            "Could you check the status of my order {order}, please?",
            "It says my package was delivered but I can't find it anywhere.",
            "What's the estimated delivery date for my {product}?",
            "Is there any way to see where my shipment is right now?",
            "My order was supposed to arrive {date}. Where is it?",
            "I still haven't received the {product}, can you look into it?",
            "Which courier is delivering order {order}?", "When should I expect my package?",
            "Order {order} shows 'label created' but nothing since then.",
            "Will my {product} get here before {future}?",
            "I paid for express shipping, so when will order {order} actually arrive?",  # vs shipping_cost
            "The {carrier} link you sent me doesn't work. Where is my parcel?",
            "Has order {order} left the warehouse yet?",
            "How long until my {product} shows up? It's been {days} days.",
        ],
        "short": ["where's my order", "order status", "track my package", "tracking number?",
                  "delivery update", "package not arrived", "shipment status please", "where is {order}"],
        "context": ["I placed order {order} {date}.", "I'm going away soon, so I need to know when it arrives.",
                    "It was meant to be a birthday present.",
                    "The confirmation email said {days} business days.",
                    "I've checked the {carrier} website several times."],
    },
    "cancel_order": {
        "core": [
            "I want to cancel order {order}.", "Please cancel my order, I placed it by mistake.",
            "Can I still cancel the {product} I bought {date}?",
            "How do I cancel an order that hasn't shipped yet?", "Stop order {order} before it ships, please.",
            "I ordered the wrong size, can you cancel it so I can reorder?",
            "Is it too late to cancel order {order}?",
            "I changed my mind about the {product}, please don't send it.",
            "Cancel the order I made {date}, I found it cheaper elsewhere.",
            "I don't want to end my subscription, I just want to cancel this one order.",  # vs cancel_subscription
            "Please call off order {order}, I no longer need it.",
            "I accidentally ordered the {product} twice, can you cancel one of them?",
            "Can you cancel my order and put the money back on my {payment}?",  # vs refund_status
            "Where is the cancel button for my order?",
            "I placed a duplicate order by accident, please cancel {order}.",
            "I'd like to withdraw my purchase of the {product} before it's dispatched.",
            "Can I cancel just one item from order {order}?",
            "Order {order} is taking too long, I'd rather cancel it.",  # vs track_order
            "Please void the order I placed {date}.", "My order hasn't shipped yet, can I still cancel?",
            "Cancel everything in order {order}.", "Can I cancel a pre-order for the {product}?",
            "I no longer need the {product}, so please cancel it before it ships.",
            "The shipping cost was more than I expected at checkout, so please just cancel order {order}.",  # vs shipping_cost
        ],
        "short": ["cancel order", "cancel my order", "cancel {order}", "stop my order",
                  "order cancellation", "undo my purchase", "dont ship it"],
        "context": ["I placed order {order} {date} by mistake.", "My partner already bought the same thing.",
                    "I used the wrong address too, so it's easier to just start again.",
                    "The item hasn't shipped according to my account page."],
    },
    "cancel_subscription": {
        "core": [
            "I want to cancel my subscription.", "How do I end my {plan} membership?",
            "Please stop my monthly box, I don't want any more deliveries.",
            "Turn off auto-renew on my account.",
            "Don't charge me again next month, I'm done with the service.",
            "Cancel my {plan} plan effective immediately.",
            "I'd like to close my membership before the next billing date.",
            "Where do I unsubscribe from the {plan} plan?",
            "I'm not cancelling an order, I want to stop the recurring subscription.",  # vs cancel_order
            "Can I cancel my subscription but still receive order {order}?",  # vs cancel_order
            "I signed up for the free trial and don't want to be billed, how do I cancel?",
            "Please end my subscription and confirm by email.",
            "I'm moving abroad so I need to cancel my {plan} membership.",  # vs change_address
            "How do I stop the recurring payments on my {payment}?",  # vs payment_issue
            "Stop renewing my plan please.", "I no longer use the service, please terminate my subscription.",
            "Is there a fee for cancelling my annual plan early?",
            "Cancel the {plan} subscription on the account {email}.",
            "I want to quit my membership, not pause it.",  # vs update_subscription
            "Will I lose my {plan} benefits right away if I cancel?",
            "My free trial runs out before {future}, please make sure I'm not charged after that.",
        ],
        "short": ["cancel subscription", "end membership", "stop auto renew", "unsubscribe me",
                  "cancel my plan", "no more monthly boxes"],
        "context": ["I've been a {plan} member for {days} months.", "Money is a bit tight at the moment.",
                    "I barely used it last month.", "My plan renews before {future}."],
    },
    "update_subscription": {
        "core": [
            "Can I switch from the {plan} plan to {plan2}?", "I'd like to upgrade my membership to {plan}.",
            "How do I downgrade to the {plan} plan?", "Can I pause my subscription for a month?",
            "Please change my delivery frequency to once a month.",
            "I want to move from monthly to annual billing.",
            "Skip next month's box but keep my subscription active.",
            "Can I add a second user to my {plan} plan?",
            "Change the card used for my subscription to my {payment}.",  # vs payment_issue
            "I don't want to cancel, I just want a cheaper plan.",  # vs cancel_subscription
            "How much would it cost to upgrade to {plan}?",
            "Can I change which day of the week my box is delivered?",
            "Please swap the {product} in my subscription box for something else.",
            "Is it possible to resume my paused subscription?",
            "Update my plan to include free express delivery.",  # vs shipping_cost
            "I want to go from two boxes a month to one.", "Can you move my renewal date to {future}?",
            "Please put my membership on hold while I'm travelling.",
            "What's the difference between {plan} and {plan2}, and can I switch mid-cycle?",
            "Change my subscription to the student discount plan.",
        ],
        "short": ["upgrade plan", "downgrade subscription", "pause subscription", "change my plan",
                  "switch to annual", "skip next box"],
        "context": ["I'm on the {plan} plan at the moment.", "We're a bigger household now.",
                    "I'll be away for a few weeks after {future}.", "The current plan is more than I need."],
    },
    "return_item": {
        "core": [
            "How do I return the {product}?", "I want to send back the {product} I bought {date}.",
            "Can I get a return label for order {order}?", "The {product} doesn't fit, can I return it?",
            "What is your return policy for opened items?",
            "Is it too late to return something I bought {date}?",
            "I'd like to return the {product} for a refund.",  # vs refund_status
            "Can I exchange the {product} for a different size?",
            "The {product} arrived damaged and I want to send it back.",  # vs complaint
            "Do I have to pay for return shipping?",  # vs shipping_cost
            "Where do I drop off a return?",
            "I received the wrong item in order {order} and need to return it.",
            "How many days do I have to return the {product}?", "Can I return a gift without the receipt?",
            "I want to start a return for two items in order {order}.",
            "The {product} isn't what I expected, how do I send it back?",
            "Can I return the {product} in your {city} store?", "Does the {product} qualify for free returns?",
            "I printed the return label, do I need to include the invoice?",
            "Please arrange a pickup for the {product} I'm returning.",
            "I'd like to exchange the {color} {product} for a different colour.",
        ],
        "short": ["return item", "return label", "send it back", "start a return", "exchange size",
                  "return policy?"],
        "context": ["It's still in the original packaging.", "I only opened the box to check it.",
                    "The colour is quite different from the photos.",
                    "I ordered the {size} but it's too small."],
    },
    "refund_status": {
        "core": [
            "Where is my refund?", "I returned the {product} {date} but haven't got my money back.",
            "When will the refund for order {order} reach my {payment}?",
            "You confirmed my return, so why hasn't the refund shown up?",
            "How long do refunds usually take?",
            "I cancelled order {order} {date} and I'm still waiting for the refund.",  # vs cancel_order
            "Has my refund of {amount} been processed?",
            "The return was delivered to your warehouse {days} days ago, where's my money?",  # vs return_item
            "My bank says there's no pending refund from you.",
            "Can you check whether the refund for the {product} went through?",
            "I was told I'd get {amount} back but I only got part of it.",
            "Why was my refund sent as store credit instead of to my card?",
            "It's been {days} days since you approved my refund.", "Refund status for order {order}, please.",
            "Is my refund stuck? The return tracking says delivered.",  # vs track_order
            "I got an email saying refund issued, but nothing in my account.",
            "When do I get my money back for the item I sent back?",
            "My refund went to an old card that's been closed, what happens now?",  # vs payment_issue
            "Did you receive my return yet? I need the refund to pay my bills.",
            "The order was cancelled automatically, when is the {amount} coming back?",
        ],
        "short": ["refund status", "where is my refund", "money back yet?", "refund not received",
                  "still no refund", "refund for {order}"],
        "context": ["I sent the parcel back with {carrier} {date}.", "I have the drop-off receipt.",
                    "The amount was {amount}.", "I really need that money back."],
    },
    "change_address": {
        "core": [
            "I need to change the delivery address on order {order}.",
            "I moved recently, how do I update my address?",
            "Can you send my {product} to {address} instead?",
            "I made a typo in my street name, can you fix it before it ships?",
            "Please update my shipping address to {address}, {city}.",
            "Can I have order {order} delivered to my work address?", "The postcode on my order is wrong.",
            "How do I change my default address in my account?",
            "Can the {carrier} driver leave it with my neighbour at number 14 instead?",
            "I'm staying in {city} this week, can you redirect my parcel there?",  # vs track_order
            "Please change the apartment number on my order to 4B.",
            "Is it possible to change the address after the order has shipped?",
            "Wrong address on order {order}, please correct it to {address}.",
            "I want my subscription boxes sent to my new flat from now on.",  # vs update_subscription
            "Can I ship order {order} to a pickup point instead of my home?",
            "My billing and delivery addresses got mixed up, can you swap them?",
            "Update the address for the {product}, I'm not at the old place anymore.",
            "How do I add a second delivery address?",
        ],
        "short": ["change address", "wrong address", "update shipping address", "new address",
                  "redirect parcel", "fix my postcode"],
        "context": ["I moved out of my old flat {date}.", "The new address is {address}, {city}.",
                    "Nobody will be home at the old address."],
    },
    "payment_issue": {
        "core": [
            "My card keeps getting declined at checkout.", "I was charged twice for order {order}.",
            "The payment failed but the money left my account.", "Why can't I pay with {payment}?",
            "Checkout keeps saying 'payment could not be processed'.",
            "You charged me {amount} but my order total was less.",
            "I see a charge from you that I don't recognise.",
            "My {payment} was billed but I never got an order confirmation.",
            "Can I split the payment between a gift card and my {payment}?",
            "The security code from my bank never arrives, so I can't finish paying.",
            "Is there a problem with {payment} payments today?",
            "My order was cancelled because of a payment error, what do I do?",  # vs cancel_order
            "I got charged for a subscription I thought I'd cancelled.",  # vs cancel_subscription
            "There's a pending charge of {amount} on my card for an order that failed.",
            "The billing address check fails even though it's correct.",  # vs change_address
            "Please remove my old card and help me add a new one.",
            "I can't enter my card details, the form just freezes.",
            "My bank flagged your payment as suspicious.",
            "Do you accept {payment}? It won't let me select it.",
        ],
        "short": ["payment declined", "charged twice", "card not working", "payment failed",
                  "double charge", "checkout error"],
        "context": ["I've tried two different cards.", "My bank says everything is fine on their side.",
                    "I'm trying to buy the {product} before the sale ends."],
    },
    "account_login": {
        "core": [
            "I can't log in to my account.", "How do I reset my password?",
            "The password reset email never arrives.", "My account is locked after too many attempts.",
            "It says my email {email} isn't registered, but I've ordered before.",
            "The two-factor code isn't coming through to my phone.",
            "I forgot which email I used to sign up.",
            "Every time I log in it takes me back to the login page.",
            "I changed my phone number and now I can't get verification codes.",
            "Someone else may have accessed my account, I can't sign in anymore.",
            "The app logs me out every few minutes.",
            "How do I change the email address on my account?",  # vs change_address
            "Can't sign in to see my orders.",  # vs track_order
            "The reset link says it has expired.",
            "I want to check my subscription but I'm locked out of my account.",  # vs update_subscription
            "My login worked {date}, now it says wrong password.",
            "I signed up with Google and now it's asking for a password.",
            "How do I merge two accounts I accidentally created?",
            "Why does it say my account has been disabled?",
        ],
        "short": ["can't log in", "reset password", "locked out", "login problem", "forgot password",
                  "2fa code not arriving"],
        "context": ["I'm using the app on my phone.", "I've tried clearing my cookies and cache.",
                    "The account is under {email}."],
    },
    "product_availability": {
        "core": [
            "Is the {product} in stock?", "When will the {product} be back in stock?",
            "Do you have the {product} in {size}?", "Is the {color} {product} available?",
            "Can you let me know when the {product} is restocked?",
            "Is the {product} available in your {city} store?",
            "The {product} says sold out, will you get more?",
            "Do you still sell the {product}, or has it been discontinued?",
            "Is there much stock left of the {product}?",
            "Can I pre-order the {product}?",  # vs cancel_order
            "Does the {product} come in {color}?", "Will the {product} be available before {future}?",
            "Can the {product} be shipped to {country}, or is it only sold locally?",  # vs shipping_cost
            "Why can't I add the {product} to my basket? It says unavailable.",
            "Are you restocking the {size} {product} any time soon?",
            "I want to buy the {product} but only the {color} one is showing.",
            "The product page for the {product} says 'only 2 left', is that accurate?",
        ],
        "short": ["in stock?", "{product} available?", "back in stock when", "restock date",
                  "sold out?", "any {size} left"],
        "context": ["I've been waiting for it for ages.", "I need it as a gift for {future}.",
                    "I checked the website this morning."],
    },
    "shipping_cost": {
        "core": [
            "How much is shipping to {city}?", "Do you offer free delivery?",
            "What's the minimum order for free shipping?", "How much does express delivery cost?",
            "Do you ship to {country}, and what does it cost?",
            "Why is shipping so expensive for the {product}?",  # vs complaint
            "Is next-day delivery available, and how much is it?",
            "Are there customs fees when shipping to {country}?",
            "What are the delivery options and prices for {city}?",
            "Why was I charged {amount} for shipping on order {order}?",  # vs payment_issue
            "Is shipping cheaper if I collect from a {carrier} pickup point?",
            "Do members get free shipping on the {plan} plan?",  # vs update_subscription
            "How much would it cost to ship the {product} to {country}?",
            "Does the shipping cost depend on the weight of the {product}?",
            "Is there a flat delivery fee or does it change by location?",
            "What's the cheapest shipping option you have?", "If I spend over {amount}, is delivery free?",
            "How long does standard shipping take and what does it cost?",  # vs track_order
            "Do you charge extra for delivery to the islands?",
        ],
        "short": ["shipping cost", "delivery fee?", "free shipping?", "express delivery price",
                  "shipping to {country}", "postage cost"],
        "context": ["I'm thinking about ordering the {product}.", "I live in {city}.",
                    "The checkout page didn't show the delivery fee clearly."],
    },
    "talk_to_human": {
        "core": [
            "Can I speak to a real person?", "I'd like to talk to a human agent, please.",
            "Is there a phone number I can call?", "Transfer me to customer service.",
            "This bot isn't helping, get me a human.",  # vs complaint
            "How do I reach a live agent?", "Can someone call me back about order {order}?",
            "I need to talk to a supervisor.", "Please connect me with someone from your support team.",
            "Is there a live chat with an actual person?",
            "I don't want automated answers, I want to speak to someone.",
            "What are your call centre opening hours?",
            "Can a person from the returns team contact me?",  # vs return_item
            "Let me talk to someone who can actually sort out my refund.",  # vs refund_status
            "Could I get an email address for a real support agent?",
            "Please have someone ring me on my mobile.", "Put me through to a manager.",
        ],
        "short": ["human please", "real person", "agent", "talk to someone", "speak to an agent",
                  "call me back", "operator", "representative"],
        "context": ["I've already been through the FAQ.", "This is getting complicated.",
                    "It's easier to explain on the phone."],
    },
    "complaint": {
        "core": [
            "Your customer service is terrible.", "I want to make a formal complaint.",
            "The courier was rude and threw my parcel over the fence.",
            "I've emailed three times and nobody has replied.",
            "The quality of the {product} is awful for the price.",
            "I'm very disappointed with how my order {order} was handled.",
            "Your website is a mess and impossible to use.", "This is the worst shopping experience I've had.",
            "The {product} broke after {days} days, this is unacceptable.",  # vs return_item
            "I was promised a callback that never happened.",  # vs talk_to_human
            "Your driver left my package in the rain and everything got soaked.",
            "I'm fed up with the constant delays on every order.",  # vs track_order
            "Staff at your {city} store were incredibly unhelpful.",
            "I'll be leaving a one-star review if this isn't sorted.",
            "You keep sending me marketing emails after I unsubscribed.",  # vs cancel_subscription
            "The packaging was excessive, so much plastic for one {product}.",
            "I want to complain about the agent I spoke to {date}.",
            "Nobody takes responsibility for anything at your company.",
            "Your 'next day delivery' took a week, which is frankly ridiculous.",  # vs shipping_cost
            "I'm unhappy with the way my refund request was handled.",  # vs refund_status
        ],
        "short": ["terrible service", "formal complaint", "very disappointed", "worst experience ever",
                  "file a complaint", "unacceptable service"],
        "context": ["I've been a loyal customer for years.", "I've never had an experience like this before.",
                    "I expect much better from a company your size."],
    },
    "promo_code": {
        "core": [
            "My discount code {code} isn't working.", "How do I apply a promo code at checkout?",
            "The code {code} says it has expired, but the email said it's valid until {future}.",
            "I forgot to use my voucher on order {order}, can you still apply it?",  # vs refund_status
            "Does {code} work on sale items?", "Where do I enter a coupon code in the app?",
            "Can I use two discount codes on one order?", "The student discount didn't apply to my basket.",
            "I got a 15% off code for signing up, where is it?",
            "The promo code {code} took the discount off but then the total went back up.",
            "Is there a discount for first-time customers?",
            "My referral credit hasn't shown up in my account.",
            "Why doesn't {code} work on the {product}?",
            "Can I get a price adjustment since the {product} went on sale {date}?",
            "The checkout rejects my gift voucher.",  # vs payment_issue
            "Do you have any discount codes right now?",
            "The free shipping code {code} didn't remove the delivery fee.",  # vs shipping_cost
            "My birthday discount code isn't in my inbox.",
        ],
        "short": ["promo code", "discount code not working", "coupon?", "voucher code", "{code} invalid",
                  "apply discount"],
        "context": ["I got the code in your newsletter.", "My basket total is about {amount}.",
                    "The sale only runs until {future}."],
    },
}

# Register: polite / neutral / casual / angry openers and closers, plus intent-neutral context.
OPENERS = {
    "polite": ["Hi,", "Hello,", "Good morning,", "Good afternoon,", "Hi there,", "Dear support team,",
               "Hello, I hope you're well.", "Hi, sorry to bother you."],
    "neutral": ["Hi.", "Hello.", "Quick question:", "Hey,", "Hi team,"],
    "casual": ["hey", "hiya", "hey guys", "ok so", "hi"],
    "angry": ["Seriously.", "This is ridiculous.", "Right,", "Third time asking:", "I'm really annoyed.",
              "Unbelievable."],
}
CLOSERS = {
    "polite": ["Thank you!", "Thanks in advance.", "Many thanks, {name}", "I appreciate your help.",
               "Kind regards, {name}", "Thanks so much for your help.", "Cheers!"],
    "neutral": ["Thanks.", "Thx.", "Regards, {name}"],
    "casual": ["thx", "ty", "cheers", "pls", "lmk"],
    "angry": ["Sort it out.", "I expect an answer today.", "Fix this now!", "This is not good enough.",
              "I'm losing patience."],
}
GENERIC_CONTEXT = [
    "I'm writing from my phone, so sorry for any typos.", "I've been shopping with you for a few years now.",
    "My name is {name}.", "I already looked through the help centre.", "Your chatbot sent me here.",
    "My account email is {email}.", "I'm not very good with computers.",
    "Hope this is the right place to ask.", "I ordered the {other} from you a while ago, no problems there.",
]
KEEP_CAPITAL = ("I", "I'm", "I've", "I'd", "I'll")


def decap(text: str) -> str:
    """Lower-case the first letter after an opener that ends in a comma ('Hi, where ...')."""
    first = text.split(" ", 1)[0]
    if first in KEEP_CAPITAL or first.rstrip("?.,!") in KEEP_CAPITAL or first[1:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def add_typos(text: str, rng: random.Random) -> str:
    """Swap, drop or double a letter inside one or two words of 4+ letters."""
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    for i in rng.sample(spots, min(len(spots), rng.choice([1, 1, 2]))):
        w, k = words[i], rng.randrange(1, len(words[i]) - 1)
        op = rng.choice(["swap", "drop", "double"])
        if op == "swap" and w[k] != w[k + 1]:
            w = w[:k] + w[k + 1] + w[k] + w[k + 2:]
        elif op == "drop":
            w = w[:k] + w[k + 1:]
        else:
            w = w[:k] + w[k] + w[k:]
        words[i] = w
    return " ".join(words)


def casualise(text: str, rng: random.Random) -> str:
    """Casual register: 'u' / 'pls', often all lower case, often no final full stop."""
    if rng.random() < 0.4:
        text = re.sub(r"\byou\b", "u", text)
        text = re.sub(r"\bplease\b", "pls", text)
    if rng.random() < 0.6:
        text = text.lower()
    if rng.random() < 0.5:
        text = text.rstrip(".!")
    return text


def utterance(intent: dict[str, list[str]], cores: list[str], allow_short: bool, rng: random.Random) -> str:
    """One message: pick a register and a form (fragment / bare / framed / long with context),
    fill the slots consistently, then apply the register's casing and punctuation."""
    slots: dict[str, str] = {}
    register = rng.choices(["polite", "neutral", "casual", "angry"], weights=[3, 4, 2, 1])[0]
    form = rng.choices(["short", "core", "framed", "long"], weights=[10 if allow_short else 0, 42, 28, 20])[0]
    if form == "short":
        text = fill(rng.choice(intent["short"]), rng, slots)
        if register == "casual":
            text = text.lower()
        elif rng.random() < 0.5:
            text = text[:1].upper() + text[1:]
        return text
    core = fill(rng.choice(cores), rng, slots)
    if register == "angry":
        if rng.random() < 0.4:
            core = core[:-1] + "!" if core.endswith(".") else core + "!"
        if len(core.split()) <= 8 and rng.random() < 0.25:
            core = core.upper()
    parts = []
    if form in ("framed", "long"):
        opener = rng.choice(OPENERS[register])
        parts.append(opener)
        if opener[-1] not in ".:!" and form == "framed":
            core = decap(core)
    if form == "long":
        ctx = rng.sample(GENERIC_CONTEXT, rng.choice([0, 1, 1, 2]))
        ctx += rng.sample(intent["context"], rng.choice([1, 1, 2]))
        rng.shuffle(ctx)
        if parts[0][-1] not in ".:!":
            ctx[0] = decap(ctx[0])
        parts += [fill(c, rng, slots) for c in ctx]
    parts.append(core)
    if form in ("framed", "long") and rng.random() < 0.8:
        parts.append(fill(rng.choice(CLOSERS[register]), rng, slots))
    text = " ".join(parts)
    if register == "casual":
        text = casualise(text, rng)
    elif rng.random() < LOWER_RATE:
        text = text.lower()
    return text


def norm_key(text: str) -> str:
    """Duplicate check ignores case and punctuation, so near-copies never land in both splits."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def unique_utterances(intent: dict[str, list[str]], cores: list[str], n: int, allow_short: bool,
                      seen: set[str], rng: random.Random) -> list[str]:
    rows: list[str] = []
    for _ in range(200 * n):
        if len(rows) == n:
            return rows
        text = utterance(intent, cores, allow_short, rng)
        if rng.random() < TYPO_RATE:
            text = add_typos(text, rng)
        if norm_key(text) not in seen:
            seen.add(norm_key(text))
            rows.append(text)
    raise RuntimeError(f"only {len(rows)} unique utterances from {cores[0]!r}...")


def build_intents(rng: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Per intent, HELDOUT_TEMPLATES core templates are reserved for eval (EVAL_UNSEEN utterances):
    eval then measures paraphrase generalisation, not just recall of seen templates."""
    seen: set[str] = set()
    train, evals = [], []
    for label, intent in INTENTS.items():
        cores = intent["core"][:]
        rng.shuffle(cores)
        unseen = unique_utterances(intent, cores[:HELDOUT_TEMPLATES], EVAL_UNSEEN, False, seen, rng)
        shared = unique_utterances(intent, cores[HELDOUT_TEMPLATES:], PER_INTENT - EVAL_UNSEEN, True, seen, rng)
        rng.shuffle(shared)
        n_shared_eval = EVAL_PER_INTENT - EVAL_UNSEEN
        evals += [(t, label) for t in unseen + shared[:n_shared_eval]]
        train += [(t, label) for t in shared[n_shared_eval:]]
    rng.shuffle(train)
    rng.shuffle(evals)
    return train, evals


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


# --------------------------------------------------------------------------- LM text
BRANDS = ["Aurora", "Nordvik", "Calder", "Brightwell", "Tidewater", "Kestrel", "Juniper", "Halden",
          "Marlow", "Fernhill", "Oakridge", "Lumen", "Solvay", "Harbor & Pine", "Wrenfield", "Alder"]
CATALOG = {
    "desk lamp": (["a home office", "late-night reading", "a small bedroom desk"],
                  ["gives a warm, even light that is easy on the eyes",
                   "has three brightness levels controlled by a single touch",
                   "folds flat so it fits in a drawer when you travel",
                   "includes a USB port for charging your phone"], "an aluminium arm and a weighted base"),
    "coffee grinder": (["a daily espresso", "filter coffee at the weekend", "a small kitchen"],
                       ["offers fifteen grind settings from fine to coarse",
                        "runs quietly enough for an early morning",
                        "holds enough beans for about twelve cups",
                        "uses conical steel burrs that keep the grind consistent"], "stainless steel and BPA-free plastic"),
    "rain jacket": (["commuting by bike", "weekend hikes", "a wet city autumn"],
                    ["keeps you dry with fully taped seams",
                     "packs into its own pocket", "has a hood that adjusts with one hand",
                     "breathes well, so you do not overheat on a climb"], "a recycled nylon shell"),
    "running shoes": (["daily training runs", "a first half marathon", "long walks"],
                      ["have a cushioned midsole that softens every landing",
                       "weigh less than most shoes in their class",
                       "use a grippy outsole that copes with wet pavements",
                       "come with a wide toe box for natural movement"], "an engineered mesh upper"),
    "office chair": (["long working days", "a shared home office", "a gaming setup"],
                     ["supports the lower back with an adjustable lumbar pad",
                      "has armrests that move in four directions",
                      "tilts and locks in three positions",
                      "rolls smoothly on carpet and hard floors alike"], "a breathable mesh back and a steel frame"),
    "bluetooth speaker": (["a picnic in the park", "the kitchen", "a small party"],
                          ["plays for up to eighteen hours on a charge",
                           "survives a splash or a short drop in the pool",
                           "pairs with a second speaker for stereo sound",
                           "has a built-in microphone for calls"], "a rubberised shell and a fabric grille"),
    "electric kettle": (["a busy family kitchen", "the office", "tea lovers"],
                        ["boils a full litre in under three minutes",
                         "lets you pick the exact temperature for green or black tea",
                         "switches off automatically when the water boils",
                         "keeps water warm for thirty minutes"], "brushed steel with a glass window"),
    "wool sweater": (["cold mornings", "layering under a coat", "a relaxed weekend"],
                     ["is soft enough to wear next to the skin",
                      "keeps its shape after many washes",
                      "has a classic crew neck that works with anything",
                      "regulates temperature, so it is warm without being stuffy"], "fine merino wool"),
    "backpack": (["school and sports", "a daily commute", "short trips"],
                 ["has a padded sleeve that fits a 15-inch laptop",
                  "spreads the weight with wide, padded straps",
                  "includes a hidden pocket for a passport or wallet",
                  "opens fully like a suitcase for easy packing"], "water-resistant recycled polyester"),
    "cast iron skillet": (["searing steak", "baking cornbread", "camping trips"],
                          ["holds heat evenly across the whole surface",
                           "goes from the stove straight into the oven",
                           "comes pre-seasoned and ready to use",
                           "gets better with every meal you cook in it"], "solid cast iron"),
}
ADJ = ["practical", "well-made", "compact", "thoughtfully designed", "reliable", "versatile", "sturdy",
       "lightweight", "good-looking", "hard-wearing"]

FAQ = {
    "How long do refunds take?": [
        "Once your return reaches our warehouse, we check it within {n} working days.",
        "If everything is in order, we issue the refund to your original payment method.",
        "Most banks show the money within {m} to {k} days, although some take a little longer.",
        "If you paid with a gift card, the amount goes back to your gift card balance instead.",
        "You will get an email as soon as the refund has been issued.",
        "You can follow each step on the Orders page of your account."],
    "Can I change my delivery address?": [
        "You can change the address as long as your order has not been packed yet.",
        "Open the order in your account and choose Edit delivery details.",
        "Once a parcel has left our warehouse, the carrier can sometimes redirect it for a small fee.",
        "If you have moved, remember to update your default address as well, so future orders go to the right place.",
        "For subscription boxes, the new address applies from the next box onwards."],
    "How much does delivery cost?": [
        "Standard delivery costs {price} and usually takes {m} to {k} working days.",
        "Orders over {big} ship free with standard delivery.",
        "Express delivery costs {price2} and arrives the next working day if you order before 2 pm.",
        "Members on the Plus and Premium plans get free express delivery on every order.",
        "Delivery to remote areas and islands can take a day or two longer.",
        "You can see the exact price for your address at checkout before you pay."],
    "How do I return an item?": [
        "You have {d} days from delivery to send an item back.",
        "Start a return from the Orders page and choose the items you want to send back.",
        "We will email you a prepaid label, or a QR code you can show at a drop-off point.",
        "Please pack the item securely, ideally in its original box.",
        "Items that were damaged on arrival can be returned free of charge at any time within the return window.",
        "Personalised items and opened hygiene products cannot be returned unless they are faulty."],
    "What can I do if I cannot log in?": [
        "First, check that you are using the email address you signed up with.",
        "Use the Forgot password link to get a reset email, which is valid for {h} hours.",
        "If the email does not arrive, look in your spam folder and add our address to your contacts.",
        "After five failed attempts your account is locked for thirty minutes to keep it safe.",
        "If you changed your phone number, our support team can reset two-step verification after a short identity check."],
    "How do I cancel or pause my subscription?": [
        "You can cancel at any time from the Membership page, and there is no fee for cancelling a monthly plan.",
        "Your benefits continue until the end of the period you have already paid for.",
        "If you only need a break, you can pause for up to {d} days instead of cancelling.",
        "Annual plans can be cancelled within fourteen days for a full refund.",
        "Cancelling a subscription does not cancel orders that have already been placed."],
    "Why was my payment declined?": [
        "Payments are usually declined by the card issuer rather than by us.",
        "Check that the billing address matches the one your bank has on file.",
        "Some banks ask you to approve online payments in their app, so keep your phone nearby.",
        "If you see a pending charge after a failed payment, it is only a temporary hold and disappears within a few days.",
        "You can also pay with PayPal, Apple Pay or a gift card."],
    "How do discount codes work?": [
        "Enter the code in the box marked Promo code on the basket page, then press Apply.",
        "Only one code can be used per order, and codes cannot be added after an order has been placed.",
        "Most codes do not apply to items that are already reduced.",
        "Each code has an expiry date, which is shown in the email that contained it.",
        "If a code does not work, check that your basket meets the minimum spend of {big}."],
    "What should I do if my parcel has not arrived?": [
        "Start by checking the tracking link in your dispatch email.",
        "Parcels sometimes show as delivered a few hours before they actually arrive.",
        "Check with neighbours and look around any safe place you have chosen.",
        "If the parcel still has not turned up after {n} working days, contact us and we will open an investigation with the carrier.",
        "We will send a replacement or a full refund if the parcel is confirmed lost."],
}

HOWTO = {
    "look after a cast iron skillet": [
        "rinse it with hot water while it is still warm, using a brush rather than soap",
        "dry it straight away, ideally over a low flame so no moisture is left",
        "rub a few drops of oil over the surface with a paper towel",
        "store it somewhere dry, with a sheet of paper inside if you stack other pans on top"],
    "descale an electric kettle": [
        "fill it halfway with equal parts water and white vinegar",
        "bring it to the boil and leave it to stand for about an hour",
        "pour the mixture away and rinse the kettle several times with clean water",
        "boil one full kettle of fresh water and throw it away before making tea again"],
    "wash a wool sweater": [
        "turn it inside out and use the wool cycle at thirty degrees or wash it by hand",
        "use a mild detergent made for wool, and skip the fabric softener",
        "press out the water gently instead of wringing the fabric",
        "dry it flat on a towel, away from direct heat, so it keeps its shape"],
    "choose the right running shoe size": [
        "measure your feet in the late afternoon, when they are at their largest",
        "leave about a thumb's width of space in front of your longest toe",
        "try the shoes on with the socks you normally run in",
        "walk and jog a few steps to check that your heel does not slip"],
    "set up a bluetooth speaker": [
        "charge the speaker fully before you use it for the first time",
        "hold the power button until the light starts flashing blue",
        "open the Bluetooth settings on your phone and pick the speaker from the list",
        "play a song at low volume first and then turn it up slowly"],
    "start a return": [
        "sign in and open the Orders page",
        "choose the order and tick the items you want to send back",
        "pick a reason and choose between a refund and an exchange",
        "print the label or save the QR code, then take the parcel to a drop-off point"],
    "reset your password": [
        "go to the sign-in page and choose Forgot password",
        "enter the email address you used when you created the account",
        "open the reset link within a few hours, before it expires",
        "choose a new password that you do not use anywhere else"],
    "apply a discount code": [
        "add everything you want to buy to your basket",
        "open the basket and find the box marked Promo code",
        "type the code exactly as it appears in the email, without spaces",
        "press Apply and check that the new total is shown before you pay"],
    "pause a subscription": [
        "open the Membership page in your account",
        "choose Pause and pick how many weeks you would like to skip",
        "check the date of your next delivery on the confirmation screen",
        "remember that you can resume early at any time from the same page"],
    "set up a standing desk": [
        "assemble the frame on the floor before you attach the desktop",
        "set the sitting height so your elbows rest at a right angle",
        "save a standing height that keeps your screen at eye level",
        "switch between sitting and standing every half hour or so"],
}
TRANSITIONS = ["First,", "Next,", "After that,", "Finally,"]

AGENT_REPLIES = {
    "track_order": ["I have checked, and your parcel is with the carrier and due to arrive {when}.",
                    "The tracking shows it left our warehouse {past} and is now at the local depot."],
    "cancel_order": ["Your order had not been packed yet, so I have cancelled it for you.",
                     "I have cancelled the order, and you will see the money back on your card within a few days."],
    "cancel_subscription": ["I have cancelled your membership, and your benefits will continue until the end of the month.",
                            "Your subscription is now cancelled, and you will not be charged again."],
    "update_subscription": ["I have changed your plan, and the new price will apply from your next billing date.",
                            "Your subscription is paused, and your next box will arrive {when}."],
    "return_item": ["I have emailed you a prepaid return label, and you have thirty days to send the item back.",
                    "You can drop the parcel at any post office, and we will refund you as soon as it arrives."],
    "refund_status": ["Your refund was issued {past}, so it should appear on your statement within a few days.",
                      "I can see the return arrived, and I have pushed the refund through today."],
    "change_address": ["I have updated the delivery address, and the parcel will go to the new address.",
                       "The order has not shipped yet, so the new address has been saved in time."],
    "payment_issue": ["I can see the second charge was only a temporary hold, and it will drop off within a few days.",
                      "The payment was declined by your bank, so it is worth checking their app for an approval request."],
    "account_login": ["I have sent a new reset link to your email address, and it is valid for two hours.",
                      "I have unlocked your account, so you can sign in again now."],
    "product_availability": ["That item is due back in stock {when}, and I can add you to the waiting list.",
                             "We have a few left in that size, so I would order soon if you want one."],
    "shipping_cost": ["Standard delivery to your area is free over fifty dollars, and express is a little extra.",
                      "Delivery to your country takes about a week, and the price is shown at checkout."],
    "talk_to_human": ["Of course, I am passing you to a colleague who will call you back within the hour.",
                      "You can reach our phone team every day from eight in the morning until eight at night."],
    "complaint": ["I am sorry to hear that, and I have passed your comments to the team responsible.",
                  "I understand your frustration, and I have logged a formal complaint on your behalf."],
    "promo_code": ["I have applied the discount to your order manually, so the new total is already showing.",
                   "That code only works on full-price items, but I can offer you free delivery instead."],
}
FOLLOW_UPS = ["Thank you, that is really helpful.", "Great, is there anything else I need to do?",
              "Perfect, thanks for sorting that out so quickly.", "Okay, and will I get an email to confirm?",
              "That's a relief, thank you.", "Fine, but please make sure it doesn't happen again.",
              "Brilliant, that was much easier than I expected.", "Thanks. How will I know when it's done?",
              "Okay, I'll keep an eye on my inbox.", "Lovely, you've been a great help."]
AGENT_CLOSES = ["You are welcome, and have a lovely day.", "Yes, a confirmation email is on its way to you now.",
                "No, there is nothing else you need to do.",
                "I have made a note on your account, so it will not happen again.",
                "Happy to help, and thank you for your patience.",
                "You will get a text message as soon as anything changes.",
                "If anything else comes up, just reply to this chat and it will reach me.",
                "My pleasure, and enjoy the rest of your week."]
AGENT_ASKS = [("Could you give me your order number, please?", "Of course, it's {order}."),
              ("Can you confirm the email address on your account?", "Sure, it's {email}."),
              ("May I have the name on the order?", "It's under {name}."),
              ("Which item is this about?", "The {product}.")]
REVIEW_OPEN = ["I bought the {brand} {item} {ago}", "We have been using the {brand} {item} for {ago2}",
               "My sister recommended the {brand} {item}, so I ordered one {ago}",
               "I was not sure about the {brand} {item} at first, but I finally ordered it {ago}",
               "I needed something for {use}, so I picked up the {brand} {item} {ago}",
               "After reading a lot of reviews, I chose the {brand} {item} {ago}"]
REVIEW_BODY = ["and it {feature}.", "and so far it {feature}.", "and I can confirm that it {feature}.",
               "and it really {feature}, just as the description says."]
REVIEW_MIDDLE = ["We mostly use it for {use}, and it has coped well.",
                 "After {ago2} of regular use, it still looks almost new.",
                 "Setting it up took less than ten minutes.",
                 "It feels more expensive than it actually was.",
                 "The {color} finish is lovely, although it shows fingerprints.",
                 "It is a little heavier than I expected, but that makes it feel solid.", ""]
REVIEW_VERDICT = ["For the price, I would buy it again without thinking twice.",
                  "It is not perfect, but it does what it promises.",
                  "Delivery was quick, and the packaging was mostly recyclable.",
                  "My only complaint is that the instructions could be clearer.",
                  "I have already recommended it to two friends.",
                  "I took off one star because the colour is slightly darker than in the photos.",
                  "Four stars from me, and I would give five if it came with a longer cable.",
                  "Overall, a solid buy that I am happy with."]
PEOPLE = [("Maria", "she", "her"), ("Tom", "he", "his"), ("Priya", "she", "her"), ("Jonas", "he", "his"),
          ("Aisha", "she", "her"), ("Liam", "he", "his"), ("Chen", "he", "his"), ("Fatima", "she", "her"),
          ("Oliver", "he", "his"), ("Sofia", "she", "her"), ("Kwame", "he", "his"), ("Ines", "she", "her")]
STORY = {
    "when": ["on a rainy Sunday evening", "during her lunch break", "late on a Thursday night",
             "first thing on a Monday morning", "on the last day of the sale", "just before a long trip"],
    "arrived": ["two days later", "the very next morning", "a day earlier than promised",
                "after a short delay at the depot", "on Friday afternoon"],
    "packing": ["well packed in a plain cardboard box", "slightly dented but perfectly intact",
                "with a handwritten thank-you note inside", "wrapped in recycled paper instead of plastic"],
    "impression": ["was pleased with how solid it felt", "thought it looked even better than in the photos",
                   "found the instructions a little confusing at first",
                   "noticed that the colour was a shade darker than expected"],
    "problem": ["{pron} noticed a small fault", "{pron} found that one piece was missing from the box",
                "{pron} realised it was not quite what {pron} needed", "{pron} spotted a flaw that was not there at first"],
    "fix": ["The agent sent a replacement part the next day", "Within an hour, a return label was in {pos} inbox",
            "The support team apologised and refunded the shipping cost",
            "A new one arrived three days later at no extra charge"],
    "end": ["Now {pron} uses it almost every day.", "{Pron} says {pron} would happily order from the shop again.",
            "It has quietly become one of {pos} favourite things in the house.",
            "{Pron} has since bought a second one as a gift."],
}


def _feature_as_third_person(feature: str, item: str) -> str:
    """Catalog features are written for 'it' or 'they'; reviews always say 'it'."""
    if item == "running shoes":
        return re.sub(r"^(\w+)", lambda m: {"have": "has", "weigh": "weighs", "use": "uses",
                                             "come": "comes"}.get(m.group(1), m.group(1)), feature)
    return feature


def product_paragraph(rng: random.Random) -> str:
    item = rng.choice(list(CATALOG))
    uses, features, material = CATALOG[item]
    brand = rng.choice(BRANDS)
    plural = item == "running shoes"
    f1, f2, f3 = rng.sample(features, 3)
    they, are = ("They", "are") if plural else ("It", "is")
    article = "The" if rng.random() < 0.5 else "Our"
    text = [
        f"{article} {brand} {item} {are} a {rng.choice(ADJ)} choice for {rng.choice(uses)}.",
        f"{they} {f1}, and {f2}." if rng.random() < 0.5 else f"{they} {f1}. {they} also {f2}.",
        f"Made from {material}, {they.lower()} {are} built to last." if rng.random() < 0.5
        else f"{they} {f3}.",
        rng.choice([f"{they} {are} covered by a {rng.choice(['one', 'two', 'three'])}-year warranty.",
                    "{} {} available in {} and {}.".format(they, are, *rng.sample(COLORS, 2)),
                    "Free returns apply for thirty days if you change your mind.",
                    "Many customers tell us it was the best purchase they made this year."
                    if not plural else "Many customers tell us they were the best purchase they made this year."]),
    ]
    return " ".join(text)


def faq_paragraph(rng: random.Random) -> str:
    question = rng.choice(list(FAQ))
    lines = FAQ[question]
    keep = sorted(rng.sample(range(len(lines)), rng.randint(3, len(lines))))
    n, m = rng.randint(2, 5), rng.randint(2, 4)
    values = {"n": str(n), "m": str(m), "k": str(m + rng.randint(2, 5)), "d": rng.choice(["14", "30", "60"]),
              "h": rng.choice(["two", "four", "24"]), "price": rng.choice(["$3.99", "$4.95", "$5"]),
              "price2": rng.choice(["$9.99", "$12", "$14.50"]), "big": rng.choice(["$35", "$50", "$75"])}
    body = " ".join(lines[i].format(**values) for i in keep)
    return f"{question} {body}"


def howto_paragraph(rng: random.Random) -> str:
    task = rng.choice(list(HOWTO))
    steps = HOWTO[task]
    intro = rng.choice([f"Here is how to {task}.", f"If you want to {task}, it only takes a few minutes.",
                        f"People often ask us how to {task}.", f"To {task}, follow these steps."])
    said = [f"{TRANSITIONS[i]} {s}." for i, s in enumerate(steps)]
    if rng.random() < 0.5:  # vary the rhythm: merge two middle steps into one sentence
        said[1:3] = [f"{TRANSITIONS[1]} {steps[1]}, and then {steps[2]}."]
        said[-1] = f"{TRANSITIONS[3]} {steps[3]}."
    outro = rng.choice(["That is all there is to it.", "It sounds like a lot, but it quickly becomes routine.",
                        "If anything is unclear, our support team is happy to help.", ""])
    return " ".join([intro] + said + ([outro] if outro else []))


def dialogue_paragraph(rng: random.Random) -> str:
    label = rng.choice(list(INTENTS))
    slots: dict[str, str] = {}
    customer = fill(rng.choice(INTENTS[label]["core"]), rng, slots)
    if rng.random() < 0.4:
        customer = fill(rng.choice(INTENTS[label]["context"]), rng, slots) + " " + customer
    when = rng.choice(["tomorrow", "on Thursday", "early next week", "within two days", "on Monday"])
    past = rng.choice(["yesterday", "on Tuesday", "this morning", "two days ago"])
    agent = rng.choice(AGENT_REPLIES[label]).format(when=when, past=past)
    name = rng.choice([n for n in NAMES if n != slots.get("name")])
    greet = rng.choice([f"Hello, my name is {name}, how can I help?", "Hi, thanks for getting in touch.",
                        f"Good morning, you are speaking with {name}.", "Hello, what can I do for you today?",
                        f"Hi, {name} here from the support team. What can I do for you?"])
    turns = [f"Agent: {greet}", f"Customer: {customer}"]
    if rng.random() < 0.5:
        ask, answer = rng.choice(AGENT_ASKS)
        turns += [f"Agent: {ask}", f"Customer: {fill(answer, rng, slots)}",
                  f"Agent: {rng.choice(['Thank you.', 'Thanks, one moment please.', 'Got it.'])} {agent}"]
    else:
        turns.append(f"Agent: {agent}")
    turns += [f"Customer: {rng.choice(FOLLOW_UPS)}", f"Agent: {rng.choice(AGENT_CLOSES)}"]
    return " ".join(turns)


def review_paragraph(rng: random.Random) -> str:
    item = rng.choice([i for i in CATALOG if i != "running shoes"])
    uses, features, _ = CATALOG[item]
    words = {"brand": rng.choice(BRANDS), "item": item, "use": rng.choice(uses), "color": rng.choice(COLORS),
             "ago": rng.choice(["last spring", "a few weeks ago", "in January", "for my birthday",
                                "after a long search", "during the winter sale"]),
             "ago2": rng.choice(["about six months", "nearly a year", "a couple of weeks", "three months"])}
    f1, f2 = rng.sample(features, 2)
    body = rng.choice(REVIEW_BODY).format(feature=_feature_as_third_person(f1, item))
    parts = [f"{rng.choice(REVIEW_OPEN).format(**words)}, {body}",
             rng.choice([f"I also like that it {f2}.", f"On top of that, it {f2}.", ""]),
             rng.choice(REVIEW_MIDDLE).format(**words), rng.choice(REVIEW_VERDICT)]
    return " ".join(p for p in parts if p)


def story_paragraph(rng: random.Random) -> str:
    name, pron, pos = rng.choice(PEOPLE)
    item = rng.choice([i for i in CATALOG if i != "running shoes"])
    pick = {k: rng.choice(v) for k, v in STORY.items()}
    when = pick["when"].replace("her lunch", pos + " lunch")
    said = [f"{name} ordered the {rng.choice(BRANDS)} {item} {when}, hoping to use it for {rng.choice(CATALOG[item][0])}.",
            f"The parcel arrived {pick['arrived']}, {pick['packing']}.",
            f"When {pron} opened it, {pron} {pick['impression']}."]
    if rng.random() < 0.5:
        said += [f"A week later, {pick['problem'].format(pron=pron)}, so {pron} contacted support.",
                 pick["fix"].format(pos=pos) + "."]
    said.append(pick["end"].format(pron=pron, Pron=pron.capitalize(), pos=pos))
    return " ".join(said)


def build_lm_text(rng: random.Random, paragraphs: int = 480, eval_share: float = 0.2) -> tuple[list[str], list[str]]:
    makers = [product_paragraph, faq_paragraph, howto_paragraph, dialogue_paragraph, review_paragraph,
              story_paragraph]
    weights = [4, 2, 1, 5, 4, 4]
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < paragraphs:
        text = re.sub(r"\s+", " ", rng.choices(makers, weights)[0](rng)).strip()
        if text not in seen:
            seen.add(text)
            out.append(text)
    n_eval = int(paragraphs * eval_share)
    return out[n_eval:], out[:n_eval]


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    train, evals = build_intents(rng)
    write_csv(HERE / "intents" / "train.csv", train)
    write_csv(HERE / "intents" / "eval.csv", evals)
    lm_train, lm_eval = build_lm_text(random.Random(SEED + 1))
    write_lines(HERE / "lm_text" / "train.txt", lm_train)
    write_lines(HERE / "lm_text" / "eval.txt", lm_eval)

    counts_train, counts_eval = Counter(l for _, l in train), Counter(l for _, l in evals)
    print(f"intents: {len(train)} train, {len(evals)} eval, {len(INTENTS)} labels")
    for label in INTENTS:
        print(f"  {label:<22} train {counts_train[label]:>3}  eval {counts_eval[label]:>3}")
    chars = sum(len(p) + 1 for p in lm_train + lm_eval)
    print(f"lm_text: {len(lm_train)} train + {len(lm_eval)} eval paragraphs, {chars} characters")


if __name__ == "__main__":
    main()
