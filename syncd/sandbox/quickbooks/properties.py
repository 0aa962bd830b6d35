"""Every property Intuit's XSD gives each entity (elements, inherited ones included, and attributes):
a write may carry any of them (python-quickbooks sends them all, blank or zero), and the simulator keeps the
ones it models and ignores the rest, as QBO ignores read-only ones; a property not here is refused (2010).

Generated from ../shared/contracts/quickbooks/*.xsd with xmlschema (types Customer, Invoice, Payment, Item:
`{e.local_name for e in type.content.iter_elements()} | set(type.attributes)`); tests check it still holds."""

from __future__ import annotations


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


XSD_PROPERTIES: dict[str, frozenset[str]] = {
    "Customer": _names(
        "ARAccountRef AcctNum Active AltContactName AlternatePhone AttachableRef Balance BalanceWithJobs "
        "BillAddr BillWithParent BusinessNumber CCDetail ClientCompanyId ClientEntityId CompanyName "
        "ContactName CreditLimit CurrencyRef CustomField CustomerEx CustomerTypeRef DefaultTaxCodeRef "
        "DisplayName FamilyName Fax FullyQualifiedName GSTIN GSTRegistrationType GivenName Id IntuitId "
        "IsCISContractor IsProject Job JobInfo Level MetaData MiddleName Mobile Notes OpenBalanceDate "
        "Organization OtherAddr OtherContactInfo OverDueBalance ParentRef PaymentMethodRef "
        "PreferredDeliveryMethod PriceLevelRef PrimaryEmailAddr PrimaryPhone PrimaryTaxIdentifier "
        "PrintOnCheckName ResaleNum RootCustomerRef SalesRepRef SalesTermRef SecondaryTaxIdentifier ShipAddr "
        "Source Suffix SyncToken TDSEnabled TaxExemptionReasonId TaxGroupCodeRef TaxRateRef TaxRegime Taxable "
        "Title TotalExpense TotalRevenue UserId V4IDPseudonym WebAddr domain sparse status "
    ),
    "Invoice": _names(
        "ARAccountRef AllowIPNPayment AllowOnlineACHPayment AllowOnlineCreditCardPayment "
        "AllowOnlinePayPalPayment AllowOnlinePayment ApplyTaxAfterDiscount AttachableRef AutoDocNumber "
        "AutoPayEligible Balance BillAddr BillEmail BillEmailBcc BillEmailCc CfdiUse CheckPayment ClassRef "
        "ConvenienceFeeDetail CreditCardPayment CurrencyRef CustomField CustomerMemo CustomerRef DeliveryInfo "
        "DepartmentRef Deposit DepositToAccountRef DiscountAmt DiscountRate DocNumber DueDate "
        "ECloudStatusTimeStamp EInvoiceStatus EmailStatus ExchangeRate Exportation FOB FinanceCharge "
        "FinancingProductType FreeFormAddress GlobalInfo GlobalTaxCalculation GovtTxnRefIdentifier "
        "GratuityEnabled HomeBalance HomeTotalAmt HomeTotalCostAmount Id InvoiceEx InvoiceLink "
        "InvoiceLinkExpiryDate InvoiceLinkSecurityCode LessCIS Line LinkedTxn MetaData PONumber "
        "PaymentDetailsMessage PaymentMethodRef PaymentRefNum PaymentType PrintStatus PrivateNote ProjectRef "
        "RecurDataRef RecurringInfo RemitToRef SalesRepRef SalesTermRef SchedulePayEligible "
        "ScheduledPaymentId ShipAddr ShipDate ShipFromAddr ShipMethodRef ShippingTaxIncludedInTotalTax "
        "SubscriptionPaymentsSetting SyncToken Tag TaxExemptionRef TaxFormNum TaxFormType TemplateRef "
        "TotalAmt TotalCostAmount TrackingNum TransactionLocationType TxnApprovalInfo TxnDate TxnSource "
        "TxnStatus TxnTaxDetail callToAction domain invoiceStatus invoiceStatusLog sparse status "
    ),
    "Payment": _names(
        "ARAccountRef AttachableRef CheckPayment CreditCardPayment CurrencyRef CustomField CustomerRef "
        "DepartmentRef DepositToAccountRef DocNumber ExchangeRate HomeTotalCostAmount Id Line LinkedTxn "
        "MetaData PaymentEx PaymentMethodRef PaymentRefNum PaymentType PrivateNote ProcessPayment ProjectRef "
        "RecurDataRef RecurringInfo RemitToRef SyncToken Tag TaxFormNum TaxFormType TotalAmt TotalCostAmount "
        "TransactionLocationType TxnApprovalInfo TxnDate TxnSource TxnStatus TxnTaxDetail UnappliedAmt domain "
        "sparse status "
    ),
    "Item": _names(
        "AbatementRate Active AssetAccountRef AttachableRef AvgCost BuildPoint COGSAccountRef ClassRef "
        "CustomField DeferredRevenue DepositToAccountRef Description ExpenseAccountRef FullyQualifiedName Id "
        "IncomeAccountRef InvStartDate ItemAssemblyDetail ItemCategoryType ItemEx ItemGroupDetail Level "
        "ManPartNum MetaData Name ParentRef PaymentMethodRef PercentBased PrefVendorRef PrintGroupedItems "
        "PurchaseCost PurchaseDesc PurchaseTaxCodeRef PurchaseTaxIncluded QtyOnHand QtyOnPurchaseOrder "
        "QtyOnSalesOrder RatePercent ReorderPoint ReverseChargeRate SalesTaxCodeRef SalesTaxIncluded "
        "ServiceType Sku Source SpecialItem SpecialItemType SubItem SyncToken TaxClassificationRef Taxable "
        "TrackQtyOnHand Type UOMSetRef UQCDisplayText UQCId UnitPrice domain sparse status "
    ),
}
